{ n }: n * n
