//! `GETSET key value`: sets the key and answers its previous value (or the null bulk).

use super::view::View;
use super::Args;
use crate::frame::Frame;
use crate::node::Node;

pub(super) fn apply(view: &mut View, args: &mut Args, node: &Node) -> Result<Frame, Frame> {
    let key = args.next_bytes()?;
    let value = args.next_bytes()?;
    args.finish()?;
    // The reply first: a value over the reply limit refuses the command before it writes.
    let reply = view.get(key).and_then(|old| view.reply_opt(node, old))?;
    view.put(key, value.to_vec())?;
    Ok(reply)
}
