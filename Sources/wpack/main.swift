print("wpack")
