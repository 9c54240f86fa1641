package dashboard

// securityRoutes registers the security pages.
func (d *Dashboard) securityRoutes() {}
