//! The rules a layer enforces: the compiled table behind an atomic pointer, swapped while
//! requests flow. Each request evaluates the table it loaded first, so a swap never tears it.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::model::RouteTable;

/// The live table, shared by every service built from one layer and by the reload handle.
#[derive(Clone)]
pub(crate) struct LiveTable {
    table: Arc<ArcSwap<RouteTable>>,
    /// Where the rules came from, kept for the reload handle; the layer never looks inside.
    origin: Arc<dyn Any + Send + Sync>,
}

impl LiveTable {
    /// A live table starting with `table`, remembering `origin` for whoever reloads it.
    pub(crate) fn new(table: Arc<ArcSwap<RouteTable>>, origin: Arc<dyn Any + Send + Sync>) -> Self {
        LiveTable { table, origin }
    }

    /// The table in force now, for one request.
    #[inline]
    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<RouteTable>> {
        self.table.load()
    }

    /// What the table came from, as given to [`LiveTable::new`].
    pub(crate) fn origin(&self) -> &Arc<dyn Any + Send + Sync> {
        &self.origin
    }
}

impl fmt::Debug for LiveTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveTable")
            .field("routes", &self.table.load().route_count())
            .finish()
    }
}
