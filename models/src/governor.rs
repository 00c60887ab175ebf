//! The Governor: observations in, an explained and guarded Plan out (being built).
