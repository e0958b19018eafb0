//! Invoice blocks: an invoice's lines split by project, region or cost code, each block with its own sections and total (Atomia bills each virtual datacenter as its own block, seed 002).
//!
//! Blocks are a view of the priced bill, not a second pricing: each line is priced once for the
//! account (tiers, included quantities and minimums apply to the account's whole usage, as on
//! an invoice without blocks), and its amount is split over the blocks its usage belongs to in
//! proportion to their quantities, rounded with the largest remainder so that a line's parts
//! add up to it exactly. A block's total is the sum of its lines, and the blocks' totals add up
//! to the lines' amounts (the subtotal before discounts, credits and taxes, which stay the
//! invoice's). Lines without usage behind them (adjustments of earlier periods, a reseller's
//! customers) go to the block named [`ACCOUNT_BLOCK`].

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::allocate::allocate;
use crate::bill::{Line, Priced, Section};
use crate::catalog::{cost_code_of, CostCode};
use crate::exact::{self, Overflow};

/// The block of lines that belong to no project, region or cost code (usage without one, and
/// lines without usage behind them). No cost code may take this name.
pub const ACCOUNT_BLOCK: &str = "(account)";

/// What an account's invoice is split into blocks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockBy {
    /// The usage's project (an OpenStack tenant, a CloudStack project, an Atomia VDC) and a
    /// subscription's project.
    Project,
    /// The line's region (a datacenter or zone).
    Region,
    /// The usage's cost code (seed 003), named by its resource, project or product: see
    /// [`crate::catalog::cost_code_of`].
    CostCode,
}

/// The cost codes blocks by cost code look up: the account's own, then the catalog's.
#[derive(Clone, Copy)]
pub(crate) struct Codes<'a> {
    pub account: &'a [CostCode],
    pub catalog: &'a [CostCode],
}

/// One block of an invoice: its lines' parts, in the invoice's section order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub name: String,
    pub sections: Vec<Section>,
    /// Sum of the block's lines.
    pub total: Decimal,
}

/// The blocks of a priced bill, in name order ([`ACCOUNT_BLOCK`] last), amounts at `scale`.
///
/// # Errors
/// [`Overflow`] when a sum does not fit in a decimal (never for a bill this engine priced).
pub(crate) fn blocks(
    priced: &Priced<'_>,
    by: BlockBy,
    codes: Codes<'_>,
    scale: u32,
) -> Result<Vec<Block>, Overflow> {
    // block -> section -> lines, in the bill's order.
    let mut out: BTreeMap<String, Vec<Section>> = BTreeMap::new();
    let mut shares = priced.shares.iter();
    for section in &priced.bill.sections {
        for line in &section.lines {
            let line_shares = shares.next().map_or(&[][..], Vec::as_slice);
            for (name, part) in parts(line, line_shares, by, codes, scale)? {
                let sections = out.entry(name).or_default();
                match sections.iter_mut().find(|s| s.name == section.name) {
                    Some(s) => s.lines.push(part),
                    None => sections.push(Section {
                        name: section.name.clone(),
                        lines: vec![part],
                        total: Decimal::ZERO,
                    }),
                }
            }
        }
    }
    let account = out.remove(ACCOUNT_BLOCK);
    let mut blocks = Vec::with_capacity(out.len() + 1);
    for (name, mut sections) in out
        .into_iter()
        .chain(account.map(|s| (ACCOUNT_BLOCK.to_string(), s)))
    {
        let mut total = Decimal::ZERO;
        for s in &mut sections {
            s.total = exact::sum(s.lines.iter().map(|l| l.amount), "block section total")?;
            total = exact::add(total, s.total, "block total")?;
        }
        blocks.push(Block {
            name,
            sections,
            total,
        });
    }
    Ok(blocks)
}

/// A line split over the blocks its shares belong to: each part with the block's quantity and
/// its share of the amount (the whole line when it has one block).
fn parts(
    line: &Line,
    shares: &[crate::bill::Share<'_>],
    by: BlockBy,
    codes: Codes<'_>,
    scale: u32,
) -> Result<Vec<(String, Line)>, Overflow> {
    let name_of = |project: &str, resource: &str| match by {
        BlockBy::Project if !project.is_empty() => project.to_string(),
        BlockBy::Region if !line.region.is_empty() => line.region.clone(),
        BlockBy::CostCode => cost_code_of(
            codes.account,
            codes.catalog,
            resource,
            project,
            &line.product,
        )
        .map_or_else(|| ACCOUNT_BLOCK.to_string(), |c| c.code.clone()),
        _ => ACCOUNT_BLOCK.to_string(),
    };
    let mut quantities: BTreeMap<String, Decimal> = BTreeMap::new();
    for s in shares {
        let q = quantities
            .entry(name_of(s.project, s.resource))
            .or_default();
        *q = exact::add(*q, s.quantity, "block quantity")?;
    }
    if quantities.len() <= 1 {
        let name = quantities
            .into_keys()
            .next()
            .unwrap_or_else(|| name_of("", ""));
        return Ok(vec![(name, line.clone())]);
    }
    let weights: Vec<Decimal> = quantities.values().copied().collect();
    let amounts = allocate(line.amount, &weights, scale);
    let adjustments = allocate(line.adjustments, &weights, scale);
    let taxes = allocate(line.tax, &weights, scale);
    Ok(quantities
        .into_iter()
        .zip(amounts.into_iter().zip(adjustments).zip(taxes))
        .map(|((name, quantity), ((amount, adjustments), tax))| {
            let part = Line {
                quantity,
                amount,
                adjustments,
                tax,
                ..line.clone()
            };
            (name, part)
        })
        .collect())
}
