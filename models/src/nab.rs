//! NAB scoring (filled by the evaluate work).
