//! The personalised random walk that ranks candidate causes.
//!
//! A walker starts at a node drawn from the restart distribution (the symptoms). At each
//! step it either follows one of its node's out-edges, chosen in proportion to the
//! edge weights, with probability `alpha`, or restarts with probability `1 - alpha`. A
//! walker at a node with no way out (a root cause, the "unexplained" sink) restarts. The
//! stationary share of walkers at each node is its score: a personalised PageRank.

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

/// Iterations at most; the walk converges in a few dozen on incident-sized graphs.
const MAX_ITERATIONS: usize = 200;
/// Stop once one iteration moves less than this much probability in total.
const TOLERANCE: f64 = 1e-10;

/// The stationary scores of a personalised random walk on `g`, one per node, in node
/// index order; they sum to 1 when `restart` does.
///
/// Edge weights must be non-negative; a node whose out-edges weigh nothing in total has
/// no way out. `restart` gives each node's share of the restarts (missing entries are
/// 0); `alpha` is the probability of following an edge rather than restarting. Pure:
/// the same input gives the same output, bit for bit.
pub(crate) fn personalised_pagerank<N>(
    g: &DiGraph<N, f64>,
    restart: &[f64],
    alpha: f64,
) -> Vec<f64> {
    let n = g.node_count();
    let restart: Vec<f64> = (0..n)
        .map(|u| restart.get(u).copied().unwrap_or(0.0))
        .collect();
    let out_w: Vec<f64> = (0..n)
        .map(|u| g.edges(NodeIndex::new(u)).map(|e| *e.weight()).sum())
        .collect();
    // Edges as flat arrays with transition probabilities: the iteration is the hot loop.
    let edges: Vec<(usize, usize, f64)> = g
        .edge_references()
        .filter(|e| out_w[e.source().index()] > 0.0)
        .map(|e| {
            let u = e.source().index();
            (u, e.target().index(), e.weight() / out_w[u])
        })
        .collect();
    let mut x = restart.clone();
    for _ in 0..MAX_ITERATIONS {
        // Walkers at a node with no way out restart.
        let dangling: f64 = (0..n).filter(|&u| out_w[u] <= 0.0).map(|u| x[u]).sum();
        let mut next: Vec<f64> = restart
            .iter()
            .map(|&r| (1.0 - alpha + alpha * dangling) * r)
            .collect();
        for &(u, v, w) in &edges {
            next[v] += alpha * x[u] * w;
        }
        let delta: f64 = next.iter().zip(&x).map(|(a, b)| (a - b).abs()).sum();
        x = next;
        if delta < TOLERANCE {
            break;
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALPHA: f64 = 0.85;

    /// A graph of `n` nodes with the given weighted edges.
    fn graph(n: usize, edges: &[(u32, u32, f64)]) -> DiGraph<(), f64> {
        let mut g = DiGraph::new();
        for _ in 0..n {
            g.add_node(());
        }
        for &(u, v, w) in edges {
            g.add_edge(NodeIndex::new(u as usize), NodeIndex::new(v as usize), w);
        }
        g
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn scores_sum_to_one() {
        // Two symptoms (0, 1), an effect (2), two causes (3, 4), a sink (5).
        let g = graph(
            6,
            &[
                (0, 5, 0.15),
                (0, 2, 0.4),
                (0, 3, 0.9),
                (1, 5, 0.15),
                (1, 4, 0.2),
                (2, 5, 0.3),
                (2, 4, 0.7),
            ],
        );
        let x = personalised_pagerank(&g, &[0.5, 0.5], ALPHA);
        assert_eq!(x.len(), 6);
        assert!(close(x.iter().sum::<f64>(), 1.0), "{x:?}");
        assert!(x.iter().all(|&s| s >= 0.0), "{x:?}");
    }

    #[test]
    fn a_node_the_restart_set_cannot_reach_gets_nothing() {
        // 3 -> 2 exists, but nothing from the symptom 0 leads to 3.
        let g = graph(4, &[(0, 1, 1.0), (0, 2, 1.0), (3, 2, 1.0)]);
        let x = personalised_pagerank(&g, &[1.0], ALPHA);
        assert_eq!(x[3], 0.0);
        assert!(x[1] > 0.0 && x[2] > 0.0);
        // Without any edge out of the restart set, all of it stays there.
        let x = personalised_pagerank(&graph(2, &[]), &[1.0], ALPHA);
        assert!(close(x[0], 1.0) && x[1] == 0.0, "{x:?}");
    }

    #[test]
    fn a_heavier_edge_gets_a_larger_share() {
        let g = graph(3, &[(0, 1, 0.2), (0, 2, 0.6)]);
        let x = personalised_pagerank(&g, &[1.0], ALPHA);
        assert!(x[2] > x[1], "{x:?}");
        assert!(close(x[2] / x[1], 3.0), "{x:?}");
    }

    #[test]
    fn the_unexplained_sink_takes_its_share() {
        // Symptom 0 with a sink (1) and one weak cause (2): the sink outweighs it.
        let (sink, cause) = (0.15, 0.05);
        let g = graph(3, &[(0, 1, sink), (0, 2, cause)]);
        let x = personalised_pagerank(&g, &[1.0], ALPHA);
        let away = x[1] + x[2];
        assert!(close(x[1] / away, sink / (sink + cause)), "{x:?}");
        // Stationary: the symptom holds 1 / (1 + alpha) of the walk.
        assert!(close(x[0], 1.0 / (1.0 + ALPHA)), "{x:?}");
        assert!(close(away, ALPHA / (1.0 + ALPHA)), "{x:?}");
    }

    #[test]
    fn deterministic_for_the_same_input() {
        let edges = [
            (0, 3, 0.15),
            (0, 1, 0.33),
            (0, 2, 0.71),
            (1, 3, 0.3),
            (1, 2, 0.05),
        ];
        let a = personalised_pagerank(&graph(4, &edges), &[1.0], ALPHA);
        let b = personalised_pagerank(&graph(4, &edges), &[1.0], ALPHA);
        assert_eq!(
            a.iter().map(|s| s.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|s| s.to_bits()).collect::<Vec<_>>()
        );
    }
}
