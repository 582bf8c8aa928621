"""Pipeline nodes, one role per file: capture, fuse, encode, and the launcher that supervises them."""
