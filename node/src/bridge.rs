//! The keosd wallet API for unmodified nodeos and cleos (being built).
