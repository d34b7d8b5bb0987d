"""What comes back from journalists: unsubscribes, bounces, complaints, replies.

``store`` keeps them in the ledger (events beside the deliveries, suppressions with their
source); ``classify`` tells what an incoming message is (``bounces`` reads the reports mail
systems write, ``incoming`` the headers and text); ``inbox`` reads a mailbox (IMAP, Maildir,
mbox) and records what it finds. ``reldist serve`` (``reldist.serve``) records the clicks on
unsubscribe links through :func:`unsubscribe`.
"""
