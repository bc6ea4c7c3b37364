//! Development signer: a P-256 key and a self-signed DSC kept in a key directory. (Helper work.)
