"""Small helpers with no home of their own: the one safe XML parser, TOML checking, secret masking, certificates."""
