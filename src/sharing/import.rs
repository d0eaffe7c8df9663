//! `onewindow import`: CSV or JSON lines into the base library.
