package dashboard

// keyRoutes registers the keys pages.
func (d *Dashboard) keyRoutes() {}
