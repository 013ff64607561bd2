"""Fair share of the bulk queue: a tenant's big backlog does not hold back another tenant's few photos."""

import redis

from client.sdk import SneakyClient
from core.keys import KeyStore
from tests.helpers import eventually, frozen_workers, mask_for, photo, png_bytes
from tests.servers import ServiceStack


def test_a_small_batch_is_not_stuck_behind_another_tenants_backlog(lone_env, log_dir):
    env = lone_env(9, SNEAKY_AUTH="keys")
    stack = ServiceStack(log_dir, env)
    stack.start_api()
    stack.start_worker("fair-worker")
    try:
        keys = KeyStore(redis.Redis.from_url(env["SNEAKY_REDIS_URL"]))
        big = SneakyClient(stack.api_url, keys.create("big")[0])
        small = SneakyClient(stack.api_url, keys.create("small")[0])
        mask = mask_for(24, 24)[0]
        with frozen_workers(stack):  # both batches wait before the first is taken
            big_keys = big.upload([png_bytes(photo(24, 24, seed=i)) for i in range(200)] + [mask])
            backlog = big.batch([{"image_key": k} for k in big_keys[:-1]], mask_key=big_keys[-1])
            small_keys = small.upload([png_bytes(photo(24, 24, seed=i)) for i in range(16)] + [mask])
            few = small.batch([{"image_key": k} for k in small_keys[:-1]], mask_key=small_keys[-1])
        eventually(lambda: small.get_batch(few.id).done, 120, 0.2, what="the small batch")
        behind = big.get_batch(backlog.id)
        # FIFO would have run all 200 first; taking turns, the 16 are done after about 16 of the 200
        assert behind.progress < 0.5, behind
        eventually(lambda: big.get_batch(backlog.id).done, 300, 0.5, what="the backlog")
        assert big.get_batch(backlog.id).counts["succeeded"] == 200
    finally:
        stack.stop()
