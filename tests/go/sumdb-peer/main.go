// sumdb-peer: golang.org/x/mod/sumdb (what Go's checksum database runs: note, the reference
// implementation of c2sp.org/signed-note, and tlog, RFC 6962 trees and proofs) as a peer for
// zt-audit's tests.
//
//	sumdb-peer verify VKEY... < NOTE  prints the verified text; exit 1 and the error on stderr
//	                                  when the note does not verify under those keys
//	sumdb-peer sign NAME < TEXT       a new Ed25519 key named NAME: prints its verifier key on
//	                                  the first line, then the signed note
//	sumdb-peer tree N M I             a tree of N records "leaf-0".."leaf-<N-1>": prints JSON with
//	                                  the roots at sizes N and M, the inclusion proof of record I
//	                                  in the N-tree and the consistency proof from M to N (hex)
//	sumdb-peer tiles N               the tiles (height 8) of that tree of N records, as JSON
//	                                  [{path, data}] (data in hex), in tlog's own path form
//	                                  (tile/8/L/N..., the height in the path)
//	sumdb-peer check-tree M N OLD NEW PROOF...
//	                                  exit 0 when PROOF (hex hashes) shows the M-tree with root
//	                                  OLD is a prefix of the N-tree with root NEW; 1 otherwise
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "sumdb-peer: "+format+"\n", args...)
	os.Exit(2)
}

func num(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		fail("%q is not a number", s)
	}
	return n
}

func hash(s string) tlog.Hash {
	var h tlog.Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		fail("%q is not a 32-byte hex hash", s)
	}
	copy(h[:], b)
	return h
}

func hexes(hs []tlog.Hash) []string {
	out := []string{}
	for _, h := range hs {
		out = append(out, hex.EncodeToString(h[:]))
	}
	return out
}

// tree builds a tree of n records in memory, the way a tlog server stores its hashes.
func tree(n int64) tlog.HashReader {
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			out[i] = stored[x]
		}
		return out, nil
	})
	for i := int64(0); i < n; i++ {
		hs, err := tlog.StoredHashes(i, []byte(fmt.Sprintf("leaf-%d", i)), r)
		if err != nil {
			fail("storing record %d: %v", i, err)
		}
		stored = append(stored, hs...)
	}
	return r
}

func treeJSON(n, m, i int64) {
	r := tree(n)
	rootN, err := tlog.TreeHash(n, r)
	if err != nil {
		fail("root at %d: %v", n, err)
	}
	rootM, err := tlog.TreeHash(m, r)
	if err != nil {
		fail("root at %d: %v", m, err)
	}
	inc, err := tlog.ProveRecord(n, i, r)
	if err != nil {
		fail("inclusion of %d in %d: %v", i, n, err)
	}
	cons, err := tlog.ProveTree(n, m, r)
	if err != nil {
		fail("consistency from %d to %d: %v", m, n, err)
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"root_n":      hex.EncodeToString(rootN[:]),
		"root_m":      hex.EncodeToString(rootM[:]),
		"inclusion":   hexes(inc),
		"consistency": hexes(cons),
	})
}

func main() {
	if len(os.Args) < 3 {
		fail("usage: sumdb-peer verify VKEY... < NOTE | sign NAME < TEXT | tree N M I | check-tree M N OLD NEW PROOF...")
	}
	switch os.Args[1] {
	case "tree":
		if len(os.Args) != 5 {
			fail("usage: sumdb-peer tree N M I")
		}
		treeJSON(num(os.Args[2]), num(os.Args[3]), num(os.Args[4]))
		return
	case "tiles":
		n := num(os.Args[2])
		r := tree(n)
		out := []map[string]string{}
		for _, t := range tlog.NewTiles(8, 0, n) {
			data, err := tlog.ReadTileData(t, r)
			if err != nil {
				fail("tile %s: %v", t.Path(), err)
			}
			out = append(out, map[string]string{"path": t.Path(), "data": hex.EncodeToString(data)})
		}
		json.NewEncoder(os.Stdout).Encode(out)
		return
	case "check-tree":
		if len(os.Args) < 6 {
			fail("usage: sumdb-peer check-tree M N OLD NEW PROOF...")
		}
		var proof tlog.TreeProof
		for _, h := range os.Args[6:] {
			proof = append(proof, hash(h))
		}
		if err := tlog.CheckTree(proof, num(os.Args[3]), hash(os.Args[5]), num(os.Args[2]), hash(os.Args[4])); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading standard input: %v", err)
	}
	switch os.Args[1] {
	case "verify":
		var verifiers []note.Verifier
		for _, vkey := range os.Args[2:] {
			v, err := note.NewVerifier(vkey)
			if err != nil {
				fail("verifier key %q: %v", vkey, err)
			}
			verifiers = append(verifiers, v)
		}
		n, err := note.Open(in, note.VerifierList(verifiers...))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Stdout.WriteString(n.Text)
		fmt.Fprintf(os.Stderr, "verified %d, unverified %d\n", len(n.Sigs), len(n.UnverifiedSigs))
	case "sign":
		skey, vkey, err := note.GenerateKey(rand.Reader, os.Args[2])
		if err != nil {
			fail("generating a key: %v", err)
		}
		signer, err := note.NewSigner(skey)
		if err != nil {
			fail("signer: %v", err)
		}
		msg, err := note.Sign(&note.Note{Text: string(in)}, signer)
		if err != nil {
			fail("signing: %v", err)
		}
		fmt.Println(vkey)
		os.Stdout.Write(msg)
	default:
		fail("unknown command %q", os.Args[1])
	}
}
