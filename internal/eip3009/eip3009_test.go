package eip3009

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/tollgate/tollgate/internal/eip712"
	"github.com/tollgate/tollgate/internal/evm"
)

// vectors.json is produced by ethers (testdata/gen_vectors.mjs), an
// implementation independent of this one.
type vectors struct {
	Type     string       `json:"type"`
	TypeHash string       `json:"type_hash"`
	Cases    []vectorCase `json:"cases"`
}

type vectorCase struct {
	Name            string      `json:"name"`
	Domain          jsonDomain  `json:"domain"`
	Message         jsonMessage `json:"message"`
	PrivateKey      string      `json:"private_key,omitempty"`
	DomainSeparator string      `json:"domain_separator,omitempty"`
	StructHash      string      `json:"struct_hash,omitempty"`
	Digest          string      `json:"digest"`
	Signature       string      `json:"signature"`
	Want            string      `json:"want"` // ok, mismatch or malformed
	Recovered       string      `json:"recovered,omitempty"`
}

// jsonDomain has the members of the domain that are present, as ethers
// takes them.
type jsonDomain struct {
	Name              *string `json:"name,omitempty"`
	Version           *string `json:"version,omitempty"`
	ChainID           *string `json:"chainId,omitempty"`
	VerifyingContract *string `json:"verifyingContract,omitempty"`
	Salt              *string `json:"salt,omitempty"`
}

type jsonMessage struct {
	From        string `json:"from"`
	To          string `json:"to"`
	Value       string `json:"value"`
	ValidAfter  string `json:"validAfter"`
	ValidBefore string `json:"validBefore"`
	Nonce       string `json:"nonce"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) == 0 {
		t.Fatal("empty vectors")
	}
	return v
}

func hex0x(b []byte) string { return "0x" + hex.EncodeToString(b) }

func word(t testing.TB, s string) [32]byte {
	t.Helper()
	var w [32]byte
	b, err := hex.DecodeString(s[2:])
	if err != nil || len(b) != 32 {
		t.Fatalf("bad bytes32 %q", s)
	}
	copy(w[:], b)
	return w
}

func address(t testing.TB, s string) evm.Address {
	t.Helper()
	a, err := evm.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func uint256(t testing.TB, s string) *big.Int {
	t.Helper()
	x, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("bad uint256 %q", s)
	}
	return x
}

func (j jsonDomain) domain(t testing.TB) eip712.Domain {
	var d eip712.Domain
	if j.Name != nil {
		d.Fields |= eip712.DomainName
		d.Name = *j.Name
	}
	if j.Version != nil {
		d.Fields |= eip712.DomainVersion
		d.Version = *j.Version
	}
	if j.ChainID != nil {
		d.Fields |= eip712.DomainChainID
		d.ChainID = uint256(t, *j.ChainID)
	}
	if j.VerifyingContract != nil {
		d.Fields |= eip712.DomainVerifyingContract
		d.VerifyingContract = address(t, *j.VerifyingContract)
	}
	if j.Salt != nil {
		d.Fields |= eip712.DomainSalt
		d.Salt = word(t, *j.Salt)
	}
	return d
}

func (j jsonMessage) authorization(t testing.TB) Authorization {
	return Authorization{
		From:        address(t, j.From),
		To:          address(t, j.To),
		Value:       uint256(t, j.Value),
		ValidAfter:  uint256(t, j.ValidAfter),
		ValidBefore: uint256(t, j.ValidBefore),
		Nonce:       word(t, j.Nonce),
	}
}

func key(t testing.TB, s string) *secp256k1.PrivateKey {
	t.Helper()
	b, err := hex.DecodeString(s[2:])
	if err != nil || len(b) != 32 {
		t.Fatalf("bad key %q", s)
	}
	return secp256k1.PrivKeyFromBytes(b)
}

func TestTypeHash(t *testing.T) {
	v := loadVectors(t)
	if v.Type != TransferWithAuthorizationType {
		t.Errorf("type %q, ethers %q", TransferWithAuthorizationType, v.Type)
	}
	if got := hex0x(transferWithAuthorizationTypeHash[:]); got != v.TypeHash {
		t.Errorf("type hash %s, ethers %s", got, v.TypeHash)
	}
}

// Every case of the ethers vectors: the same hashes, the same verdict, the
// same recovered address; and for the good ones, the same signature.
func TestEthersVectors(t *testing.T) {
	for _, c := range loadVectors(t).Cases {
		t.Run(c.Name, func(t *testing.T) {
			d, a := c.Domain.domain(t), c.Message.authorization(t)
			sep, err := d.Separator()
			if err != nil || hex0x(sep[:]) != c.DomainSeparator {
				t.Errorf("separator %x, %v; ethers %s", sep, err, c.DomainSeparator)
			}
			h, err := StructHash(a)
			if err != nil || hex0x(h[:]) != c.StructHash {
				t.Errorf("struct hash %x, %v; ethers %s", h, err, c.StructHash)
			}
			digest, err := Digest(d, a)
			if err != nil || hex0x(digest[:]) != c.Digest {
				t.Errorf("digest %x, %v; ethers %s", digest, err, c.Digest)
			}
			sig, err := evm.ParseSignature(c.Signature)
			if err != nil {
				t.Fatal(err)
			}
			err = Verify(d, a, sig)
			switch c.Want {
			case "ok":
				if err != nil {
					t.Errorf("Verify: %v", err)
				}
				got, err := Sign(key(t, c.PrivateKey), d, a)
				if err != nil || hex0x(got) != c.Signature {
					t.Errorf("Sign = %x, %v; ethers %s", got, err, c.Signature)
				}
			case "mismatch":
				if !errors.Is(err, evm.ErrSignatureMismatch) {
					t.Errorf("Verify: %v, want ErrSignatureMismatch", err)
				}
				if got, err := evm.RecoverAddress(digest, sig); err != nil || got != address(t, c.Recovered) {
					t.Errorf("recovered %s, %v; ethers %s", got, err, c.Recovered)
				}
			case "malformed":
				if !errors.Is(err, evm.ErrMalformed) {
					t.Errorf("Verify: %v, want ErrMalformed", err)
				}
			default:
				t.Fatalf("unknown verdict %q", c.Want)
			}
		})
	}
}

func TestTokenDomain(t *testing.T) {
	for _, c := range loadVectors(t).Cases[:3] { // Base, Base Sepolia, Ethereum
		j := c.Domain
		chainID := uint256(t, *j.ChainID)
		d := TokenDomain(*j.Name, *j.Version, chainID.Uint64(), address(t, *j.VerifyingContract))
		if sep, err := d.Separator(); err != nil || hex0x(sep[:]) != c.DomainSeparator {
			t.Errorf("%s: %x, %v; ethers %s", c.Name, sep, err, c.DomainSeparator)
		}
	}
}

// good returns the first case of the vectors, a payment on Base, and its
// signature.
func good(t testing.TB) (eip712.Domain, Authorization, []byte) {
	c := loadVectors(t).Cases[0]
	if c.Want != "ok" {
		t.Fatal("case 0 is not a good one")
	}
	sig, err := evm.ParseSignature(c.Signature)
	if err != nil {
		t.Fatal(err)
	}
	return c.Domain.domain(t), c.Message.authorization(t), sig
}

func TestVerifyRefusesMalformed(t *testing.T) {
	d, a, sig := good(t)
	with := func(i int, b byte) []byte {
		s := append([]byte(nil), sig...)
		s[i] = b
		return s
	}
	for name, bad := range map[string][]byte{
		"nil":    nil,
		"short":  sig[:64],
		"long":   append(append([]byte(nil), sig...), 0),
		"v=29":   with(64, 29),
		"v=0":    with(64, 0),
		"v=1":    with(64, 1),
		"zero r": append(make([]byte, 32), sig[32:]...),
		"zero s": append(append(append([]byte(nil), sig[:32]...), make([]byte, 32)...), sig[64]),
		"s=N": func() []byte {
			s := append([]byte(nil), sig...)
			n, _ := hex.DecodeString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
			copy(s[32:64], n)
			return s
		}(),
	} {
		if err := Verify(d, a, bad); !errors.Is(err, evm.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Integers that are not uint256, and domains without a separator, are
// refused by every function, without a panic.
func TestRefusesInvalidValues(t *testing.T) {
	d, a, sig := good(t)
	twoTo256 := new(big.Int).Lsh(big.NewInt(1), 256)
	type mutation struct {
		name string
		d    func(*eip712.Domain)
		a    func(*Authorization)
	}
	var ms []mutation
	for _, f := range []struct {
		name string
		ptr  func(*Authorization) **big.Int
	}{
		{"value", func(a *Authorization) **big.Int { return &a.Value }},
		{"validAfter", func(a *Authorization) **big.Int { return &a.ValidAfter }},
		{"validBefore", func(a *Authorization) **big.Int { return &a.ValidBefore }},
	} {
		for _, x := range []struct {
			name string
			v    *big.Int
		}{{"nil", nil}, {"-1", big.NewInt(-1)}, {"2^256", twoTo256}} {
			ms = append(ms, mutation{name: f.name + " " + x.name, a: func(a *Authorization) { *f.ptr(a) = x.v }})
		}
	}
	ms = append(ms,
		mutation{name: "zero domain", d: func(d *eip712.Domain) { *d = eip712.Domain{} }},
		mutation{name: "nil chainId", d: func(d *eip712.Domain) { d.ChainID = nil }},
		mutation{name: "chainId 2^256", d: func(d *eip712.Domain) { d.ChainID = twoTo256 }},
	)
	k := key(t, loadVectors(t).Cases[0].PrivateKey)
	for _, m := range ms {
		dd, aa := d, a
		if m.d != nil {
			m.d(&dd)
		}
		if m.a != nil {
			m.a(&aa)
		}
		if err := Verify(dd, aa, sig); !errors.Is(err, eip712.ErrInvalid) {
			t.Errorf("%s: Verify: %v", m.name, err)
		}
		if _, err := Digest(dd, aa); !errors.Is(err, eip712.ErrInvalid) {
			t.Errorf("%s: Digest: %v", m.name, err)
		}
		if s, err := Sign(k, dd, aa); !errors.Is(err, eip712.ErrInvalid) || s != nil {
			t.Errorf("%s: Sign: %x, %v", m.name, s, err)
		}
	}
	for name, k := range map[string]*secp256k1.PrivateKey{"nil": nil, "zero": new(secp256k1.PrivateKey)} {
		if s, err := Sign(k, d, a); !errors.Is(err, eip712.ErrInvalid) || s != nil {
			t.Errorf("%s key: %x, %v", name, s, err)
		}
	}
	// Nothing was modified.
	if a.Value.String() != "10000" || d.ChainID.String() != "8453" {
		t.Errorf("arguments modified: %v, %v", a.Value, d.ChainID)
	}
}

func TestValidAt(t *testing.T) {
	a := Authorization{ValidAfter: big.NewInt(1000), ValidBefore: big.NewInt(1010)}
	for _, c := range []struct {
		unix int64
		want bool
	}{
		{-1, false}, {999, false}, {1000, false}, {1001, true}, {1009, true}, {1010, false}, {1 << 40, false},
	} {
		for _, nsec := range []int64{0, 999999999} { // whole seconds count
			if got := a.ValidAt(time.Unix(c.unix, nsec)); got != c.want {
				t.Errorf("ValidAt(%d.%09d) = %v, want %v", c.unix, nsec, got, c.want)
			}
		}
	}
	forever := Authorization{ValidAfter: big.NewInt(0), ValidBefore: new(big.Int).Lsh(big.NewInt(1), 256)}
	if !forever.ValidAt(time.Unix(1<<40, 0)) {
		t.Error("ValidBefore 2^256: not valid")
	}
	for _, a := range []Authorization{{ValidBefore: big.NewInt(10)}, {ValidAfter: big.NewInt(0)}, {}} {
		if a.ValidAt(time.Unix(5, 0)) {
			t.Errorf("%+v: valid with a nil bound", a)
		}
	}
}

var goSigs = flag.String("go-sigs", "", "write the signatures TestGoSignatures makes to this file, for testdata/check_go_sigs.mjs")

// Signatures made by Sign, on other keys, domains and values than the
// vectors', verify. With -go-sigs=FILE they are written out for ethers to
// check too (testdata/check_go_sigs.mjs).
func TestGoSignatures(t *testing.T) {
	v := loadVectors(t)
	maxU256 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	domains := []eip712.Domain{
		TokenDomain("USD Coin", "2", 8453, address(t, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")),
		TokenDomain("USDC", "2", 84532, address(t, "0x036CbD53842c5426634e7929541eC2318f3dCF7e")),
		TokenDomain("USD Coin", "2", 43114, address(t, "0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E")),
		TokenDomain("", "", 1<<64-1, evm.Address{}),
	}
	for _, c := range v.Cases {
		if c.Want == "ok" {
			domains = append(domains, c.Domain.domain(t))
		}
	}
	var out []vectorCase
	for i := range 24 {
		seed := evm.Keccak256(fmt.Appendf(nil, "tollgate eip3009 go key %d", i))
		k := secp256k1.PrivKeyFromBytes(seed[:])
		from := evm.PublicKeyAddress(k.PubKey())
		x := evm.Keccak256(seed[:]) // pseudo-random values of every size
		a := Authorization{
			From:        from,
			To:          evm.Address(x[:20]),
			Value:       new(big.Int).Rsh(new(big.Int).SetBytes(x[:]), uint(i*11%257)),
			ValidAfter:  big.NewInt(int64(i) * 1_000_000_007),
			ValidBefore: []*big.Int{big.NewInt(1767225660), maxU256, big.NewInt(0)}[i%3],
			Nonce:       evm.Keccak256(x[:]),
		}
		d := domains[i%len(domains)]
		sig, err := Sign(k, d, a)
		if err != nil {
			t.Fatal(err)
		}
		if len(sig) != evm.SignatureLen || (sig[64] != 27 && sig[64] != 28) {
			t.Fatalf("signature shape %x", sig)
		}
		if err := Verify(d, a, sig); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		digest, _ := Digest(d, a)
		out = append(out, vectorCase{
			Name:      fmt.Sprintf("go %d", i),
			Domain:    toJSONDomain(d),
			Message:   toJSONMessage(a),
			Digest:    hex0x(digest[:]),
			Signature: hex0x(sig),
			Want:      "ok",
		})
	}
	if *goSigs != "" {
		raw, err := json.MarshalIndent(vectors{Type: v.Type, TypeHash: v.TypeHash, Cases: out}, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*goSigs, raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func toJSONDomain(d eip712.Domain) jsonDomain {
	var j jsonDomain
	str := func(s string) *string { return &s }
	if d.Fields&eip712.DomainName != 0 {
		j.Name = str(d.Name)
	}
	if d.Fields&eip712.DomainVersion != 0 {
		j.Version = str(d.Version)
	}
	if d.Fields&eip712.DomainChainID != 0 {
		j.ChainID = str(d.ChainID.String())
	}
	if d.Fields&eip712.DomainVerifyingContract != 0 {
		j.VerifyingContract = str(d.VerifyingContract.Hex())
	}
	if d.Fields&eip712.DomainSalt != 0 {
		j.Salt = str(hex0x(d.Salt[:]))
	}
	return j
}

func toJSONMessage(a Authorization) jsonMessage {
	return jsonMessage{
		From:        a.From.Hex(),
		To:          a.To.Hex(),
		Value:       a.Value.String(),
		ValidAfter:  a.ValidAfter.String(),
		ValidBefore: a.ValidBefore.String(),
		Nonce:       hex0x(a.Nonce[:]),
	}
}

// fuzzKey signs in FuzzVerify.
func fuzzKey() *secp256k1.PrivateKey {
	seed := evm.Keccak256([]byte("tollgate eip3009 fuzz key"))
	return secp256k1.PrivKeyFromBytes(seed[:])
}

// FuzzVerify: any domain, authorization and signature bytes give nil or an
// error of the documented classes, never a panic; and whatever can be
// hashed, Sign signs so that Verify accepts it.
func FuzzVerify(f *testing.F) {
	for _, c := range loadVectors(f).Cases {
		d, a := c.Domain.domain(f), c.Message.authorization(f)
		sig, _ := evm.ParseSignature(c.Signature)
		var chainID []byte
		if d.ChainID != nil {
			chainID = d.ChainID.Bytes()
		}
		f.Add(d.Name, d.Version, chainID, uint8(d.Fields), d.VerifyingContract[:], d.Salt[:],
			a.From[:], a.To[:], a.Value.Bytes(), a.ValidAfter.Bytes(), a.ValidBefore.Bytes(), uint8(0), a.Nonce[:], sig)
	}
	key := fuzzKey()
	signer := evm.PublicKeyAddress(key.PubKey())
	f.Fuzz(func(t *testing.T, name, version string, chainID []byte, fields uint8, contract, salt, from, to,
		value, after, before []byte, flags uint8, nonce, sig []byte) {
		// flags: bits 0-2 negate value, validAfter, validBefore; bits 3-5
		// make them nil; bit 6 makes the chain ID nil.
		num := func(b []byte, neg, isNil uint8) *big.Int {
			if flags&isNil != 0 {
				return nil
			}
			x := new(big.Int).SetBytes(b)
			if flags&neg != 0 {
				x.Neg(x)
			}
			return x
		}
		d := eip712.Domain{
			Fields:  eip712.DomainFields(fields),
			Name:    name,
			Version: version,
			ChainID: num(chainID, 0, 1<<6),
		}
		copy(d.VerifyingContract[:], contract)
		copy(d.Salt[:], salt)
		a := Authorization{
			Value:       num(value, 1<<0, 1<<3),
			ValidAfter:  num(after, 1<<1, 1<<4),
			ValidBefore: num(before, 1<<2, 1<<5),
		}
		copy(a.From[:], from)
		copy(a.To[:], to)
		copy(a.Nonce[:], nonce)

		err := Verify(d, a, sig)
		if err != nil && !errors.Is(err, evm.ErrMalformed) && !errors.Is(err, evm.ErrSignatureMismatch) && !errors.Is(err, eip712.ErrInvalid) {
			t.Fatalf("unexpected error class: %v", err)
		}
		_, hashErr := Digest(d, a)
		if hashErr != nil {
			if !errors.Is(hashErr, eip712.ErrInvalid) {
				t.Fatalf("Digest: unexpected error class: %v", hashErr)
			}
			if err == nil {
				t.Fatal("verified what cannot be hashed")
			}
			return
		}
		a.From = signer
		own, err := Sign(key, d, a)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		if err := Verify(d, a, own); err != nil {
			t.Fatalf("Verify of Sign: %v", err)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	d, a, sig := good(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(d, a, sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDigest(b *testing.B) {
	d, a, _ := good(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Digest(d, a); err != nil {
			b.Fatal(err)
		}
	}
}
