package dashboard

// metricRoutes registers the metrics pages.
func (d *Dashboard) metricRoutes() {}
