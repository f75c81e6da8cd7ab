"""Generation: turning a request for an image into a queued job, and a finished image into
what was asked for (a post, a reply to an ask, a remix). The GPU work itself is generator/'s;
this wing owns the job rows, the queue bound, the follow-up steps, asks by mention, remixes
and scheduled posts."""
