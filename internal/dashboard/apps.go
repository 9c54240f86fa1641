package dashboard

// appRoutes registers the apps pages.
func (d *Dashboard) appRoutes() {}
