package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// medianTables prints the cell-by-cell median of the markdown tables that
// several runs printed (the same peers and columns in each): every number
// in a cell is replaced by the median of the numbers at its place in the
// runs' cells, keeping the first run's text around them.
func medianTables(files []string) error {
	var runs [][]string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var lines []string
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "|") || l == "" {
				lines = append(lines, l)
			}
		}
		runs = append(runs, lines)
	}
	for _, r := range runs[1:] {
		if len(r) != len(runs[0]) {
			return fmt.Errorf("the runs' tables differ in length: %d and %d lines", len(runs[0]), len(r))
		}
	}
	num := regexp.MustCompile(`[0-9]+(\.[0-9]+)?`)
	for i, line := range runs[0] {
		if strings.HasPrefix(line, "|---") || !strings.HasPrefix(line, "| ") || strings.Contains(line, "conn/s") || strings.Contains(line, "MiB/s |") {
			fmt.Println(line)
			continue
		}
		cells := strings.Split(line, "|")
		for j := 2; j < len(cells); j++ { // the peer's name stays
			k := 0
			cells[j] = num.ReplaceAllStringFunc(cells[j], func(s string) string {
				var xs []float64
				for _, r := range runs {
					rc := strings.Split(r[i], "|")
					if j >= len(rc) {
						return s
					}
					ms := num.FindAllString(rc[j], -1)
					if k >= len(ms) {
						return s
					}
					x, _ := strconv.ParseFloat(ms[k], 64)
					xs = append(xs, x)
				}
				k++
				prec := 0
				if _, frac, ok := strings.Cut(s, "."); ok {
					prec = len(frac)
				}
				return strconv.FormatFloat(medianF(xs), 'f', prec, 64)
			})
		}
		fmt.Println(strings.Join(cells, "|"))
	}
	return nil
}
