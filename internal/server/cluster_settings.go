package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/store"
)

// The settings every node of a cluster must share. A token signed by one
// node is checked by whichever node the load balancer picks next: its
// issuer ("iss") and audience ("aud") must be the ones every node expects
// (RFC 9068 section 4; RFC 7519 sections 4.1.1 and 4.1.3). The first node
// that starts on a store records them (store.PinClusterSetting); a node
// configured otherwise refuses to start, naming the setting to change.

// ClusterSetting is one of the settings every node must share: its
// configuration key, its value in this node's configuration, and the
// setting it is derived from when it is not set itself.
type ClusterSetting struct {
	Name  string // "auth.issuer" or "auth.audience"
	Value string
	// DerivedFrom is "server.public_url" when Value is derived from it.
	DerivedFrom string
}

// Setting is the setting to change to change s: its own, or the one it is
// derived from.
func (s ClusterSetting) Setting() string {
	if s.DerivedFrom != "" {
		return fmt.Sprintf("%s (from which %s is derived)", s.DerivedFrom, s.Name)
	}
	return s.Name
}

// ClusterSettings returns the settings of cfg that every node of a cluster
// must share.
func ClusterSettings(cfg config.Config) []ClusterSetting {
	from := func(derived bool) string {
		if derived {
			return "server.public_url"
		}
		return ""
	}
	return []ClusterSetting{
		{Name: "auth.issuer", Value: cfg.Auth.Issuer, DerivedFrom: from(cfg.Derived.Issuer)},
		{Name: "auth.audience", Value: cfg.Auth.Audience, DerivedFrom: from(cfg.Derived.Audience)},
	}
}

// SettingMismatchError says that a setting of this node differs from the
// one the cluster recorded.
type SettingMismatchError struct {
	Setting  ClusterSetting
	Recorded store.ClusterSetting
}

func (e *SettingMismatchError) Error() string {
	by := ""
	if e.Recorded.RecordedBy != "" {
		by = " by " + e.Recorded.RecordedBy
	}
	return fmt.Sprintf("%s is %q on this node but %q on the cluster (recorded in the store%s at %s): set %s as on the other nodes",
		e.Setting.Name, e.Setting.Value, e.Recorded.Value, by, e.Recorded.RecordedAt.UTC().Format(time.RFC3339),
		e.Setting.Setting())
}

// ErrClusterSettings wraps the errors of a node whose settings differ from
// the cluster's.
var ErrClusterSettings = errors.New("this node's configuration differs from the cluster's, " +
	"so the tokens one signs would be refused by the other")

// PinClusterSettings records cfg's cluster settings in st unless they are
// recorded already (the first node of a cluster records its own), and
// fails, wrapping ErrClusterSettings and a *SettingMismatchError per
// setting, when the recorded ones differ. It does nothing outside cluster
// mode (config.Config.ClusterMode).
func PinClusterSettings(ctx context.Context, st store.Store, cfg config.Config) error {
	if !cfg.ClusterMode() {
		return nil
	}
	node := nodeName(cfg)
	var errs []error
	for _, s := range ClusterSettings(cfg) {
		got, err := st.PinClusterSetting(ctx, store.ClusterSetting{Name: s.Name, Value: s.Value, RecordedBy: node})
		if err != nil {
			return fmt.Errorf("server: record %s in the store: %w", s.Name, err)
		}
		if got.Value != s.Value {
			errs = append(errs, &SettingMismatchError{Setting: s, Recorded: got})
		}
	}
	return clusterError(errs)
}

// CompareClusterSettings compares cfg's cluster settings with those
// recorded in st, without recording any, as PinClusterSettings would. It
// returns the names of the settings not recorded yet.
func CompareClusterSettings(ctx context.Context, st store.Store, cfg config.Config) (unrecorded []string, err error) {
	var errs []error
	for _, s := range ClusterSettings(cfg) {
		got, err := st.GetClusterSetting(ctx, s.Name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			unrecorded = append(unrecorded, s.Name)
		case err != nil:
			return nil, fmt.Errorf("server: read %s from the store: %w", s.Name, err)
		case got.Value != s.Value:
			errs = append(errs, &SettingMismatchError{Setting: s, Recorded: got})
		}
	}
	return unrecorded, clusterError(errs)
}

// RecordClusterSettings records cfg's cluster settings in st, replacing
// those recorded, audited as actor's change.
func RecordClusterSettings(ctx context.Context, st store.Store, cfg config.Config, actor store.Actor) error {
	for _, s := range ClusterSettings(cfg) {
		err := st.SetClusterSetting(ctx, store.ClusterSetting{Name: s.Name, Value: s.Value, RecordedBy: string(actor.Type)},
			actor.Entry("", "cluster.record_setting", "cluster_setting", s.Name, map[string]string{s.Name: s.Value}))
		if err != nil {
			return fmt.Errorf("server: record %s in the store: %w", s.Name, err)
		}
	}
	return nil
}

// clusterError joins the mismatches under ErrClusterSettings; nil when
// there are none.
func clusterError(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return &clusterSettingsError{errs: errs, msg: strings.Join(msgs, "; ") + ". To move the whole cluster to this " +
		"node's values instead, run `tollgate config record-issuer` with this configuration, then restart every node with it"}
}

// clusterSettingsError is ErrClusterSettings with its mismatches.
type clusterSettingsError struct {
	errs []error
	msg  string
}

func (e *clusterSettingsError) Error() string {
	return "server: " + ErrClusterSettings.Error() + ": " + e.msg
}

func (e *clusterSettingsError) Unwrap() []error {
	return append([]error{ErrClusterSettings}, e.errs...)
}

// nodeName says which node recorded a setting: its host name and listen
// address.
func nodeName(cfg config.Config) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return cfg.Server.Listen
	}
	return host + " (" + cfg.Server.Listen + ")"
}
