"""Inbound: what arrives from other servers. Admission of verified activities (intake), the
signers' keys (keyring), remote actors (remote), the inbox worker that dereferences and
dispatches each stored activity to one handler (worker, dispatch, handlers/), and turning a
handle or URL a person typed into rows (resolve)."""
