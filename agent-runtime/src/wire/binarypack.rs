//! placeholder, owned by the wire helper.
