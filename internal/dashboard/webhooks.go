package dashboard

// webhookRoutes registers the webhooks pages.
func (d *Dashboard) webhookRoutes() {}
