//! Sans-I/O presence state machines (owned by the room helper).
