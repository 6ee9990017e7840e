//! The loop's link table: every DataConnection (presence, authority, `sig`, `bulk`) with its
//! codec and writer queue.

use tokio::sync::mpsc;

use crate::mesh::DataConnection;
use crate::wire::Value;

use super::broker_peer::{spawn_link, Write};
use super::codec::LinkCodec;
use super::driver::Driver;
use super::event::Counters;
use super::input::LinkId;

/// What a link carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkRole {
    /// Our presence link to the authority.
    Presence,
    /// A participant's presence link to us (authority role), tagged with the authority epoch.
    AuthorityConn(u64),
    /// A mesh `sig` link.
    Sig,
    /// A mesh `bulk` link.
    Bulk,
}

/// One DataConnection in the table.
pub(crate) struct Link {
    pub(crate) peer: String,
    pub(crate) role: LinkRole,
    pub(crate) writer: mpsc::UnboundedSender<Write>,
    pub(crate) codec: LinkCodec,
    pub(crate) open: bool,
    /// The remote certificate's fingerprint, once the link opened (if readable).
    pub(crate) remote_fp: Option<String>,
}

impl Driver {
    /// Registers a connection, spawning its reader and writer.
    pub(crate) fn add_link(&mut self, conn: DataConnection, role: LinkRole) -> LinkId {
        let id = self.next_link;
        self.next_link += 1;
        let peer = conn.peer().to_owned();
        let writer = spawn_link(
            conn,
            id,
            &mut self.tasks,
            self.tx.clone(),
            self.cancel.child_token(),
        );
        self.links.insert(
            id,
            Link {
                peer,
                role,
                writer,
                codec: LinkCodec::new(),
                open: false,
                remote_fp: None,
            },
        );
        id
    }

    /// Sends one message on a link (chunked when large); false when it is not open.
    pub(crate) fn write(&mut self, id: LinkId, value: &Value) -> bool {
        let Some(link) = self.links.get_mut(&id).filter(|l| l.open) else {
            return false;
        };
        for payload in link.codec.encode(value) {
            if link.writer.send(Write::Data(payload)).is_err() {
                return false;
            }
            Counters::bump(&self.counters.frames_out);
        }
        true
    }

    /// Closes a link after whatever was queued on it, and forgets it.
    pub(crate) fn close_link(&mut self, id: LinkId) {
        if let Some(link) = self.links.remove(&id) {
            let _ = link.writer.send(Write::Close);
        }
    }
}
