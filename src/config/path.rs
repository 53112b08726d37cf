//! Field paths (`spec.http[0].match[1].headers.user-agent.regex`) and their lines.

use std::fmt;
use std::rc::Rc;

use super::node::{Node, Value};

#[derive(Clone, Debug)]
enum Seg {
    Key(Box<str>),
    Index(usize),
}

#[derive(Debug)]
struct Link {
    parent: Option<Rc<Link>>,
    seg: Seg,
}

/// A path from a document's root to one field: a shared list, so that a child path costs one
/// small allocation however deep it is.
#[derive(Clone, Debug, Default)]
pub(crate) struct FieldPath(Option<Rc<Link>>);

impl FieldPath {
    pub(crate) fn root() -> Self {
        FieldPath(None)
    }

    fn child(&self, seg: Seg) -> Self {
        FieldPath(Some(Rc::new(Link {
            parent: self.0.clone(),
            seg,
        })))
    }

    pub(crate) fn key(&self, key: &str) -> Self {
        self.child(Seg::Key(key.into()))
    }

    pub(crate) fn index(&self, i: usize) -> Self {
        self.child(Seg::Index(i))
    }

    /// The segments from the root.
    fn segments(&self) -> Vec<&Seg> {
        let mut out = Vec::new();
        let mut link = self.0.as_deref();
        while let Some(l) = link {
            out.push(&l.seg);
            link = l.parent.as_deref();
        }
        out.reverse();
        out
    }

    /// The node at this path under `root`, or the deepest node on the way.
    pub(crate) fn locate<'a>(&self, root: &'a Node) -> &'a Node {
        let mut node = root;
        for seg in self.segments() {
            let next = match (seg, &node.value) {
                (Seg::Key(k), Value::Map(_)) => node.get(k),
                (Seg::Index(i), Value::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.segments().into_iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}
