//! The AdaptivePolicy spec: the single source of truth for the CRD, scenario files and CLI (being built).
