//! `GETDEL key`: deletes the key and answers the value it had (or the null bulk).

use kvstore_core::OpRef;

use super::view::View;
use super::Args;
use crate::frame::Frame;
use crate::node::Node;

pub(super) fn apply(view: &mut View, args: &mut Args, node: &Node) -> Result<Frame, Frame> {
    let key = args.next_bytes()?;
    args.finish()?;
    // The reply first: a value over the reply limit refuses the command before it writes.
    let old = view.get(key)?;
    let existed = old.is_some();
    let reply = view.reply_opt(node, old)?;
    if existed {
        view.write([OpRef::Delete { key }])?;
    }
    Ok(reply)
}
