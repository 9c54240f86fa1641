// Package eip712 implements the hashing of EIP-712 typed structured data
// that verifying a typed-data signature needs: the domain separator, the
// 32-byte encodings of atomic and dynamic values, type hashes, struct
// hashes and the final "\x19\x01" digest that is signed.
//
// It has no type parser and no reflection: a caller that hashes a struct
// writes its encodeType string once and lists its members' words in order,
// as a Solidity contract does:
//
//	typeHash := eip712.TypeHash("Person(string name,address wallet)")
//	person := eip712.HashStruct(typeHash, eip712.EncodeString(name), eip712.EncodeAddress(wallet))
//	digest := eip712.Digest(separator, person)
//
// A member of type bytes32 is its own word and needs no encoding; a member
// whose type is a struct is encoded as that struct's HashStruct. Arrays and
// the shorter bytesN and uintN types are not provided.
//
// Everything in this package is a pure function of its arguments, and safe
// for concurrent use while no one modifies a Domain's ChainID.
package eip712

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/tollgate/tollgate/internal/evm"
)

// ErrInvalid: a value that has no EIP-712 encoding, such as a nil, negative
// or over-256-bit uint256, or a domain without fields. Every error of this
// package wraps it.
var ErrInvalid = errors.New("eip712: invalid value")

// DomainFields is the set of the fields an EIP712Domain type has, a bit for
// each of Domain's fields. The zero value is the empty set.
type DomainFields uint8

// The domain fields, in the order EIP-712 lists them, which is the order in
// which they appear in the EIP712Domain type.
const (
	DomainName              DomainFields = 1 << iota // string name
	DomainVersion                                    // string version
	DomainChainID                                    // uint256 chainId
	DomainVerifyingContract                          // address verifyingContract
	DomainSalt                                       // bytes32 salt

	allDomainFields = DomainName | DomainVersion | DomainChainID | DomainVerifyingContract | DomainSalt
)

// Domain is an EIP-712 domain: the context (a contract on a chain, a
// version of its signing format) that a signature is bound to.
//
// Fields says which members the domain's EIP712Domain type has; a member
// that is not in Fields is left out of the type and of the separator, and
// the value in its struct field is ignored. A member in Fields is included
// whatever its value, even "" or the zero address, as ethers and Solidity
// include it. So Domain{Fields: DomainName, Name: ""} and Domain{} are
// different domains: the first is EIP712Domain(string name) with an empty
// name; the second, the zero value, has no members and no separator.
//
// Most domains, including USDC's, have the first four members:
//
//	eip712.Domain{
//		Fields:            eip712.DomainName | eip712.DomainVersion | eip712.DomainChainID | eip712.DomainVerifyingContract,
//		Name:              "USD Coin",
//		Version:           "2",
//		ChainID:           big.NewInt(8453),
//		VerifyingContract: usdc,
//	}
//
// A Domain is a value; Separator does not modify it or ChainID.
type Domain struct {
	Fields DomainFields

	// Name is the user-readable name of the signing domain, usually the
	// contract's or the protocol's.
	Name string
	// Version is the current major version of the signing domain.
	Version string
	// ChainID is the EIP-155 chain ID, 0 to 2²⁵⁶-1. It must not be nil
	// when Fields has DomainChainID.
	ChainID *big.Int
	// VerifyingContract is the address of the contract that will verify
	// the signature.
	VerifyingContract evm.Address
	// Salt is a disambiguating salt for the protocol.
	Salt [32]byte
}

// EncodeType returns the encodeType string of d's EIP712Domain type, such
// as "EIP712Domain(string name,string version,uint256 chainId,address
// verifyingContract)". It does not check d.Fields.
func (d Domain) EncodeType() string {
	var b strings.Builder
	b.WriteString("EIP712Domain(")
	sep := ""
	for _, m := range [...]struct {
		f    DomainFields
		decl string
	}{
		{DomainName, "string name"},
		{DomainVersion, "string version"},
		{DomainChainID, "uint256 chainId"},
		{DomainVerifyingContract, "address verifyingContract"},
		{DomainSalt, "bytes32 salt"},
	} {
		if d.Fields&m.f != 0 {
			b.WriteString(sep)
			b.WriteString(m.decl)
			sep = ","
		}
	}
	b.WriteString(")")
	return b.String()
}

// Separator returns the domain separator, hashStruct(eip712Domain): the
// Keccak-256 of the type hash of d.EncodeType() and the words of the
// members in d.Fields. It fails if d.Fields is empty or has unknown bits,
// or if the chain ID is a member and is nil, negative or over 256 bits.
func (d Domain) Separator() ([32]byte, error) {
	if d.Fields == 0 {
		return [32]byte{}, fmt.Errorf("%w: domain has no fields", ErrInvalid)
	}
	if d.Fields&^allDomainFields != 0 {
		return [32]byte{}, fmt.Errorf("%w: unknown domain fields %#x", ErrInvalid, uint8(d.Fields&^allDomainFields))
	}
	words := make([][32]byte, 0, 5)
	if d.Fields&DomainName != 0 {
		words = append(words, EncodeString(d.Name))
	}
	if d.Fields&DomainVersion != 0 {
		words = append(words, EncodeString(d.Version))
	}
	if d.Fields&DomainChainID != 0 {
		w, err := EncodeUint256(d.ChainID)
		if err != nil {
			return [32]byte{}, fmt.Errorf("domain chainId: %w", err)
		}
		words = append(words, w)
	}
	if d.Fields&DomainVerifyingContract != 0 {
		words = append(words, EncodeAddress(d.VerifyingContract))
	}
	if d.Fields&DomainSalt != 0 {
		words = append(words, d.Salt)
	}
	return HashStruct(TypeHash(d.EncodeType()), words...), nil
}

// TypeHash returns typeHash = keccak256(encodeType), where encodeType is
// the type's canonical signature, "Name(type1 name1,type2 name2,...)",
// followed by the signatures of the struct types it references, sorted by
// name. TypeHash does not parse or check it.
func TypeHash(encodeType string) [32]byte {
	return evm.Keccak256([]byte(encodeType))
}

// HashStruct returns hashStruct(s) = keccak256(typeHash ‖ encodeData(s)),
// where encodeData(s) is the concatenation of the members' words, in the
// order of the members in the type.
func HashStruct(typeHash [32]byte, words ...[32]byte) [32]byte {
	parts := make([][]byte, 0, 1+len(words))
	parts = append(parts, typeHash[:])
	for i := range words {
		parts = append(parts, words[i][:])
	}
	return evm.Keccak256(parts...)
}

// Digest returns the hash that is signed, keccak256("\x19\x01" ‖
// domainSeparator ‖ hashStruct(message)), given the domain separator and
// the message's struct hash.
func Digest(domainSeparator, structHash [32]byte) [32]byte {
	return evm.Keccak256([]byte{0x19, 0x01}, domainSeparator[:], structHash[:])
}

// EncodeAddress returns the word of an address: its 20 bytes, left-padded
// with zeros (as uint160).
func EncodeAddress(a evm.Address) [32]byte {
	var w [32]byte
	copy(w[12:], a[:])
	return w
}

// EncodeUint256 returns the word of a uint256: x in 32 bytes, big-endian.
// It fails if x is nil, negative or 2²⁵⁶ or more.
func EncodeUint256(x *big.Int) ([32]byte, error) {
	var w [32]byte
	switch {
	case x == nil:
		return w, fmt.Errorf("%w: nil uint256", ErrInvalid)
	case x.Sign() < 0:
		return w, fmt.Errorf("%w: negative uint256", ErrInvalid)
	case x.BitLen() > 256:
		return w, fmt.Errorf("%w: uint256 over 2^256-1", ErrInvalid)
	}
	x.FillBytes(w[:])
	return w, nil
}

// EncodeBool returns the word of a bool: the uint256 1 or 0.
func EncodeBool(b bool) [32]byte {
	var w [32]byte
	if b {
		w[31] = 1
	}
	return w
}

// EncodeString returns the word of a string: the Keccak-256 of its UTF-8
// bytes (s's bytes, unchanged).
func EncodeString(s string) [32]byte {
	return evm.Keccak256([]byte(s))
}

// EncodeBytes returns the word of a dynamic bytes value: its Keccak-256.
func EncodeBytes(b []byte) [32]byte {
	return evm.Keccak256(b)
}
