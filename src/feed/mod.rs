//! Feeds: where rules come from while a service runs. Each one loads the rules with
//! [`config`](crate::config) and puts them in force through [`MeshRules`](crate::MeshRules);
//! none uses the layer. Followed files and folders (feature `watch`), and the cluster's
//! resources (feature `kube`).

#[cfg(feature = "kube")]
pub(crate) mod cluster;
#[cfg(feature = "watch")]
pub(crate) mod files;
