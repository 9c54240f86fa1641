package server

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/secretbox"
)

// ErrNoMasterKey: a server outside development mode was given no master key.
var ErrNoMasterKey = errors.New("no master key: set TOLLGATE_SECRETS_MASTER_KEY (generate one with " +
	"`tollgate secrets generate-key` or `openssl rand -base64 32`) or secrets.master_key_file")

// LoadMasterKey loads the key that seals secrets at rest (signing keys, HMAC
// signing secrets), with the previous keys that still open older values:
// from the environment or configuration, or from the configured key file.
// Only in development mode does it fall back to master.key beside the SQLite
// database, created on first start; otherwise a missing key is
// ErrNoMasterKey, so that secrets are never sealed under a key nobody chose
// to keep.
func LoadMasterKey(cfg config.Config, log *slog.Logger) (*secretbox.Box, error) {
	sc := cfg.Secrets
	var key []byte
	var err error
	switch {
	case sc.MasterKey != "":
		key, err = secretbox.ParseKey(sc.MasterKey)
	case sc.MasterKeyFile != "":
		key, err = secretbox.LoadKeyFile(sc.MasterKeyFile)
	case cfg.Dev:
		path := filepath.Join(filepath.Dir(cfg.Storage.SQLite.Path), "master.key")
		key, err = secretbox.LoadKeyFile(path)
		if errors.Is(err, os.ErrNotExist) {
			key, err = secretbox.CreateKeyFile(path)
			if err == nil {
				log.Warn("generated a new master key for development; without it the sealed secrets cannot be read", "path", path)
			}
		}
	default:
		err = ErrNoMasterKey
		if path := filepath.Join(filepath.Dir(cfg.Storage.SQLite.Path), "master.key"); fileExists(path) {
			err = fmt.Errorf("%w (an earlier version generated %s: set secrets.master_key_file to it)", err, path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("server: master key: %w", err)
	}
	previous := make([][]byte, 0, len(sc.PreviousMasterKeys))
	for i, p := range sc.PreviousMasterKeys {
		k, err := secretbox.ParseKey(p)
		if err != nil {
			return nil, fmt.Errorf("server: secrets.previous_master_keys[%d]: %w", i, err)
		}
		previous = append(previous, k)
	}
	return secretbox.New(key, previous...)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
