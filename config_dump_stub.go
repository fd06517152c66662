package main

func dumpConfig(c *Config) string { return "" }
