"""The global rate limiter: a token bucket per channel, shared by every worker, and the pacing
that releases a sub-batch to its channel no faster than the bucket allows.

``bucket_for(settings)`` picks the shared state the same way the broker is picked: Redis (one
Lua script, Redis' own clock) when the broker is Redis, a locked file in the instance folder on
the embedded default."""

from alertd.channels.limiter.bucket import Bucket, Grant, Shape, bucket_for
from alertd.channels.limiter.pacing import Recheck, deliver_paced

__all__ = ["Bucket", "Grant", "Recheck", "Shape", "bucket_for", "deliver_paced"]
