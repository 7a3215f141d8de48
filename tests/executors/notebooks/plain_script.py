print("a plain script, not a notebook")
