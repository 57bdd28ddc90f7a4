add(user, entry, now + tonumber(ttl))
keep()
