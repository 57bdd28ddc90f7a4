return publish(stream, route, head, tail, size, ttl, sender, '')
