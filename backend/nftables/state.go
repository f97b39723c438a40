package nftables

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"go4.org/netipx"
	"golang.org/x/sys/unix"
)

// A state is what the kernel holds in the backend's table, as read back.
type state struct {
	exists bool
	// foreign says why the table cannot be updated in place (a chain or set
	// the backend did not make, a set of the wrong type, elements that are
	// not intervals); "" when it can.
	foreign string
	sets    map[string]*setState
	rules   [][]byte // ruleKey of each rule, in chain order
	chain   *nftables.Chain
	table   *nftables.Table
}

type setState struct {
	set    *nftables.Set
	v6     bool
	ranges []netipx.IPRange
	zero   bool // holds the leading zero end element
}

// readState reads the table. A table that is absent is not an error; one
// the backend cannot update in place is reported in state.foreign.
func readState(ctx context.Context, cc *nftables.Conn, name string, progress func(done int)) (*state, error) {
	st := &state{sets: map[string]*setState{}}
	t, err := cc.ListTableOfFamily(name, nftables.TableFamilyINet)
	if errors.Is(err, unix.ENOENT) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nftables: reading table inet %s: %w", name, err)
	}
	st.exists, st.table = true, t
	foreign := func(format string, args ...any) {
		if st.foreign == "" {
			st.foreign = fmt.Sprintf(format, args...)
		}
	}

	chains, err := cc.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("nftables: reading chains: %w", err)
	}
	for _, c := range chains {
		if c.Table.Name != name {
			continue
		}
		if c.Name != chainName || c.Type != nftables.ChainTypeNAT ||
			c.Hooknum == nil || *c.Hooknum != *nftables.ChainHookPrerouting ||
			c.Priority == nil || *c.Priority != *nftables.ChainPriorityNATDest {
			foreign("chain %q is not the backend's nat prerouting chain", c.Name)
			continue
		}
		st.chain = c
	}
	if st.chain == nil {
		foreign("chain %q missing", chainName)
	} else {
		rules, err := cc.GetRules(t, st.chain)
		if err != nil {
			return nil, fmt.Errorf("nftables: reading rules: %w", err)
		}
		for _, r := range rules {
			k, err := ruleKey(r.Exprs, r.UserData)
			if err != nil {
				foreign("rule %d: %v", r.Handle, err)
				continue
			}
			st.rules = append(st.rules, k)
		}
	}

	sets, err := cc.GetSets(t)
	if err != nil {
		return nil, fmt.Errorf("nftables: reading sets: %w", err)
	}
	done := 0
	for _, s := range sets {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		v6 := s.KeyType.GetNFTMagic() == nftables.TypeIP6Addr.GetNFTMagic()
		if s.Anonymous || s.IsMap || !s.Interval || s.AutoMerge || s.HasTimeout || s.Concatenation ||
			(!v6 && s.KeyType.GetNFTMagic() != nftables.TypeIPAddr.GetNFTMagic()) {
			foreign("set %q is not an interval set of addresses without auto-merge", s.Name)
			continue
		}
		es, err := cc.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("nftables: reading set %s: %w", s.Name, err)
		}
		rs, zero, err := decodeElems(es, v6)
		if err != nil {
			foreign("set %s: %v", s.Name, err)
			continue
		}
		st.sets[s.Name] = &setState{set: s, v6: v6, ranges: rs, zero: zero}
		done += len(rs)
		if progress != nil {
			progress(done)
		}
	}
	return st, nil
}
