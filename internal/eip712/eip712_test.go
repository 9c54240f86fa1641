package eip712

import (
	"encoding/hex"
	"errors"
	"math/big"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/tollgate/tollgate/internal/evm"
)

func mustAddress(t *testing.T, s string) evm.Address {
	t.Helper()
	a, err := evm.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustWord(t *testing.T, s string) [32]byte {
	t.Helper()
	var w [32]byte
	b, err := hex.DecodeString(s[2:])
	if err != nil || len(b) != 32 {
		t.Fatalf("bad word %q", s)
	}
	copy(w[:], b)
	return w
}

// The example of EIP-712 itself (assets/eip-712/Example.js): a Mail from
// Cow to Bob, signed by the key keccak256("cow").
func TestSpecificationExample(t *testing.T) {
	const (
		mailType   = "Mail(Person from,Person to,string contents)Person(string name,address wallet)"
		personType = "Person(string name,address wallet)"
	)
	domain := Domain{
		Fields:            DomainName | DomainVersion | DomainChainID | DomainVerifyingContract,
		Name:              "Ether Mail",
		Version:           "1",
		ChainID:           big.NewInt(1),
		VerifyingContract: mustAddress(t, "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"),
	}
	person := func(name, wallet string) [32]byte {
		return HashStruct(TypeHash(personType), EncodeString(name), EncodeAddress(mustAddress(t, wallet)))
	}
	mailTypeHash := TypeHash(mailType)
	from := person("Cow", "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826")
	to := person("Bob", "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB")
	contents := EncodeString("Hello, Bob!")

	// encodeData(Mail), as the specification prints it.
	encodeData := append(append(append(append([]byte(nil), mailTypeHash[:]...), from[:]...), to[:]...), contents[:]...)
	const wantEncodeData = "a0cedeb2dc280ba39b857546d74f5549c3a1d7bdc2dd96bf881f76108e23dac2" +
		"fc71e5fa27ff56c350aa531bc129ebdf613b772b6604664f5d8dbe21b85eb0c8" +
		"cd54f074a4af31b4411ff6a60c9719dbd559c221c8ac3492d9d872b041d703d1" +
		"b5aadf3154a261abdd9086fc627b61efca26ae5702701d05cd2305f7c52a2fc8"
	if got := hex.EncodeToString(encodeData); got != wantEncodeData {
		t.Errorf("encodeData(Mail) = %s, want %s", got, wantEncodeData)
	}

	mail := HashStruct(mailTypeHash, from, to, contents)
	if want := mustWord(t, "0xc52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e"); mail != want {
		t.Errorf("hashStruct(Mail) = %x, want %x", mail, want)
	}
	sep, err := domain.Separator()
	if err != nil {
		t.Fatal(err)
	}
	if want := mustWord(t, "0xf2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"); sep != want {
		t.Errorf("domain separator = %x, want %x", sep, want)
	}
	digest := Digest(sep, mail)
	if want := mustWord(t, "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"); digest != want {
		t.Errorf("digest = %x, want %x", digest, want)
	}

	// The signature of the specification (v 28, r, s) recovers to Cow.
	sig, err := evm.ParseSignature("4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d" +
		"07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562" + "1c")
	if err != nil {
		t.Fatal(err)
	}
	cow := mustAddress(t, "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826")
	if got, err := evm.RecoverAddress(digest, sig); err != nil || got != cow {
		t.Errorf("recovered %s, %v; want %s", got, err, cow)
	}
	// keccak256("cow") is Cow's key, and signing the digest with it (RFC
	// 6979, as the specification's ecsign) gives the same signature.
	seed := evm.Keccak256([]byte("cow"))
	key := secp256k1.PrivKeyFromBytes(seed[:])
	if got := evm.PublicKeyAddress(key.PubKey()); got != cow {
		t.Errorf("address of keccak256(\"cow\") = %s, want %s", got, cow)
	}
	compact := ecdsa.SignCompact(key, digest[:], false)
	if got := append(compact[1:], compact[0]); hex.EncodeToString(got) != hex.EncodeToString(sig) {
		t.Errorf("signature %x, want %x", got, sig)
	}
}

func TestDomainEncodeType(t *testing.T) {
	for _, c := range []struct {
		fields DomainFields
		want   string
	}{
		{DomainName, "EIP712Domain(string name)"},
		{DomainChainID | DomainSalt, "EIP712Domain(uint256 chainId,bytes32 salt)"},
		{DomainName | DomainVersion | DomainChainID | DomainVerifyingContract,
			"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"},
		{DomainName | DomainVersion | DomainChainID | DomainVerifyingContract | DomainSalt,
			"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)"},
	} {
		if got := (Domain{Fields: c.fields}).EncodeType(); got != c.want {
			t.Errorf("%05b: %s, want %s", c.fields, got, c.want)
		}
	}
}

// Only the members in Fields count: other values are ignored, and a member
// in Fields counts even with its zero value.
func TestDomainSeparatorFields(t *testing.T) {
	d := Domain{Fields: DomainName | DomainChainID, Name: "x", ChainID: big.NewInt(5)}
	want := HashStruct(TypeHash("EIP712Domain(string name,uint256 chainId)"), EncodeString("x"), uintWord(5))
	other := d
	other.Version, other.VerifyingContract, other.Salt = "9", evm.Address{1}, [32]byte{2}
	for _, dd := range []Domain{d, other} {
		got, err := dd.Separator()
		if err != nil || got != want {
			t.Errorf("%+v: %x, %v; want %x", dd, got, err, want)
		}
	}
	// Without a chain ID, a nil ChainID is fine.
	noChain := Domain{Fields: DomainName | DomainVerifyingContract}
	got, err := noChain.Separator()
	want = HashStruct(TypeHash("EIP712Domain(string name,address verifyingContract)"), EncodeString(""), [32]byte{})
	if err != nil || got != want {
		t.Errorf("empty name, zero contract: %x, %v; want %x", got, err, want)
	}
}

// uintWord is the word of a small uint256.
func uintWord(x byte) [32]byte {
	var w [32]byte
	w[31] = x
	return w
}

func TestDomainSeparatorRefuses(t *testing.T) {
	tooBig := new(big.Int).Lsh(big.NewInt(1), 256)
	for name, d := range map[string]Domain{
		"zero value":    {},
		"unknown field": {Fields: DomainName | 1<<5},
		"nil chain":     {Fields: DomainChainID},
		"negative":      {Fields: DomainChainID, ChainID: big.NewInt(-1)},
		"2^256":         {Fields: DomainChainID, ChainID: tooBig},
	} {
		if _, err := d.Separator(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestEncodeUint256(t *testing.T) {
	maxU256 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	for _, c := range []struct {
		x    *big.Int
		want string // hex, or "" for ErrInvalid
	}{
		{big.NewInt(0), "0000000000000000000000000000000000000000000000000000000000000000"},
		{big.NewInt(1), "0000000000000000000000000000000000000000000000000000000000000001"},
		{big.NewInt(8453), "0000000000000000000000000000000000000000000000000000000000002105"},
		{maxU256, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"},
		{new(big.Int).Add(maxU256, big.NewInt(1)), ""},
		{big.NewInt(-1), ""},
		{new(big.Int).Neg(maxU256), ""},
		{nil, ""},
	} {
		w, err := EncodeUint256(c.x)
		switch {
		case c.want == "" && !errors.Is(err, ErrInvalid):
			t.Errorf("EncodeUint256(%v) = %x, %v; want ErrInvalid", c.x, w, err)
		case c.want != "" && (err != nil || hex.EncodeToString(w[:]) != c.want):
			t.Errorf("EncodeUint256(%v) = %x, %v; want %s", c.x, w, err, c.want)
		}
	}
	// The argument is not modified.
	x := big.NewInt(42)
	EncodeUint256(x)
	if x.Int64() != 42 {
		t.Errorf("argument modified: %v", x)
	}
}

func TestEncodeStatic(t *testing.T) {
	a := mustAddress(t, "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826")
	if got := EncodeAddress(a); hex.EncodeToString(got[:]) != "000000000000000000000000cd2a3d9f938e13cd947ec05abc7fe734df8dd826" {
		t.Errorf("EncodeAddress = %x", got)
	}
	if EncodeBool(true) != uintWord(1) || EncodeBool(false) != uintWord(0) {
		t.Error("EncodeBool")
	}
	if EncodeString("abc") != evm.Keccak256([]byte("abc")) || EncodeBytes([]byte{1, 2}) != evm.Keccak256([]byte{1, 2}) {
		t.Error("EncodeString/EncodeBytes")
	}
	if EncodeBytes(nil) != EncodeString("") {
		t.Error("empty bytes and empty string differ")
	}
}
