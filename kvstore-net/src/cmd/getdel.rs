//! `GETDEL key`: deletes the key and answers the value it had (or the null bulk).

use kvstore_core::Op;

use super::view::View;
use super::Args;
use crate::frame::Frame;
use crate::node::Node;

pub(super) fn apply(view: &mut View, args: &mut Args, node: &Node) -> Result<Frame, Frame> {
    let key = args.next_bytes()?;
    args.finish()?;
    let old = view.get(key)?;
    if old.is_some() {
        view.write(&[Op::Delete { key: key.to_vec() }])?;
    }
    view.reply_opt(node, old)
}
