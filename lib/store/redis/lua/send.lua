return deliver(meta, queue, devices, log, now, queue_max, queue_ttl, meta_ttl, log_size, log_ttl, log_span, tail, route, head)
