package main

func parseVirtualServer(l *loader, n *node, c *Config) {
	l.warnf(n, "not supported by vipd yet: virtual_server")
}
func parseVSGroup(l *loader, n *node, c *Config) {
	l.warnf(n, "not supported by vipd yet: virtual_server_group")
}
func (l *loader) finishVirtualServers() {}
