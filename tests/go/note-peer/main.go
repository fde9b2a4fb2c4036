// note-peer: golang.org/x/mod/sumdb/note (the reference implementation of c2sp.org/signed-note,
// what Go's checksum database speaks) as a peer for zt-audit's tests.
//
//	note-peer verify VKEY... < NOTE   prints the verified text; exit 1 and the error on stderr
//	                                  when the note does not verify under those keys
//	note-peer sign NAME < TEXT        a new Ed25519 key named NAME: prints its verifier key on
//	                                  the first line, then the signed note
package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"

	"golang.org/x/mod/sumdb/note"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "note-peer: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 3 {
		fail("usage: note-peer verify VKEY... < NOTE | note-peer sign NAME < TEXT")
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
