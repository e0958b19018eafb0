//! Issuers' logos on documents: an SVG parsed and simplified to paths by usvg once, when the configuration is loaded, then drawn with krilla's own paths in flat colours.
//!
//! usvg resolves what makes SVG hard (CSS, units, `viewBox`, shapes, transforms, `use`) into
//! absolute paths; drawing those is a few lines. What a PDF/A letterhead cannot draw faithfully
//! this way (text, which would need the logo's fonts; embedded images; gradients, patterns,
//! clips, masks and filters) is refused when the configuration is loaded, naming the feature,
//! rather than drawn wrong on every invoice: convert text to outlines and flatten effects in
//! the logo's editor. That keeps the rater free of a rasterizer and of system fonts.

use krilla::color::rgb;
use krilla::geom::{PathBuilder, Transform};
use krilla::num::NormalizedF32;
use krilla::paint::{Fill, FillRule, LineCap, LineJoin, Stroke};
use krilla::surface::Surface;
use usvg::tiny_skia_path::{self, PathSegment};

/// Largest logo accepted, in bytes of SVG: a letterhead mark, not an illustration.
pub const LOGO_SVG_BYTES_MAX: usize = 64 * 1024;

/// Most paths a logo may have once simplified.
pub const LOGO_PATHS_MAX: usize = 2_000;

/// A logo ready to draw: its paths in the SVG's user space, with their paints.
#[derive(Debug, Clone)]
pub struct Logo {
    width: f32,
    height: f32,
    shapes: Vec<Shape>,
}

#[derive(Debug, Clone)]
struct Shape {
    path: tiny_skia_path::Path,
    fill: Option<Fill>,
    stroke: Option<Stroke>,
}

fn color(c: usvg::Color) -> rgb::Color {
    rgb::Color::new(c.red, c.green, c.blue)
}

fn opacity(o: f32) -> NormalizedF32 {
    NormalizedF32::new(o.clamp(0.0, 1.0)).unwrap_or(NormalizedF32::ONE)
}

impl Logo {
    /// Parses `svg`.
    ///
    /// # Errors
    /// What is wrong, in words: too large, not SVG, or a feature that is not drawn (text,
    /// images, gradients, patterns, clip paths, masks, filters), or nothing to draw.
    pub fn parse(svg: &str) -> Result<Logo, String> {
        if svg.len() > LOGO_SVG_BYTES_MAX {
            return Err(format!(
                "{} bytes, more than {LOGO_SVG_BYTES_MAX}: a logo is a small mark",
                svg.len()
            ));
        }
        // usvg without its text feature drops text silently: a logo that shows its name in
        // a font would lose it on every invoice.
        if svg.contains("<text") {
            return Err(
                "it has text, which is not drawn: convert the text to outlines (paths)".into(),
            );
        }
        let tree = usvg::Tree::from_str(svg, &usvg::Options::default())
            .map_err(|e| format!("not an SVG image: {e}"))?;
        let mut shapes = Vec::new();
        collect(tree.root(), 1.0, &mut shapes)?;
        if shapes.is_empty() {
            return Err("nothing to draw: no visible path".into());
        }
        if shapes.len() > LOGO_PATHS_MAX {
            return Err(format!(
                "{} paths, more than {LOGO_PATHS_MAX}: simplify the logo",
                shapes.len()
            ));
        }
        let size = tree.size();
        Ok(Logo {
            width: size.width(),
            height: size.height(),
            shapes,
        })
    }

    /// Draws the logo scaled to fit the box at (`x`, `y`) of `w` x `h` points, keeping its
    /// proportions, centred vertically and left-aligned.
    pub fn draw(&self, s: &mut Surface, x: f32, y: f32, w: f32, h: f32) {
        let scale = (w / self.width).min(h / self.height);
        let dy = (h - self.height * scale) / 2.0;
        s.push_transform(&Transform::from_row(scale, 0.0, 0.0, scale, x, y + dy));
        for shape in &self.shapes {
            let mut pb = PathBuilder::new();
            for seg in shape.path.segments() {
                match seg {
                    PathSegment::MoveTo(p) => pb.move_to(p.x, p.y),
                    PathSegment::LineTo(p) => pb.line_to(p.x, p.y),
                    PathSegment::QuadTo(p1, p) => pb.quad_to(p1.x, p1.y, p.x, p.y),
                    PathSegment::CubicTo(p1, p2, p) => {
                        pb.cubic_to(p1.x, p1.y, p2.x, p2.y, p.x, p.y);
                    }
                    PathSegment::Close => pb.close(),
                }
            }
            let Some(path) = pb.finish() else { continue };
            // SVG paints the fill, then the stroke over it.
            if shape.fill.is_some() {
                s.set_stroke(None);
                s.set_fill(shape.fill.clone());
                s.draw_path(&path);
            }
            if shape.stroke.is_some() {
                s.set_fill(None);
                s.set_stroke(shape.stroke.clone());
                s.draw_path(&path);
            }
        }
        s.set_stroke(None);
        s.pop();
    }
}

/// The paths under `g`, transformed to the SVG's user space, in painting order.
fn collect(g: &usvg::Group, alpha: f32, out: &mut Vec<Shape>) -> Result<(), String> {
    if g.clip_path().is_some() {
        return Err("it uses a clip path, which is not drawn: flatten it".into());
    }
    if g.mask().is_some() {
        return Err("it uses a mask, which is not drawn: flatten it".into());
    }
    if !g.filters().is_empty() {
        return Err("it uses a filter, which is not drawn: flatten it".into());
    }
    // A group's opacity is applied to each of its paths: exact for paths that do not
    // overlap, as a logo's rarely do.
    let alpha = alpha * g.opacity().get();
    for node in g.children() {
        match node {
            usvg::Node::Group(g) => collect(g, alpha, out)?,
            usvg::Node::Path(p) => {
                if !p.is_visible() {
                    continue;
                }
                let ts = p.abs_transform();
                let Some(path) = p.data().clone().transform(ts) else {
                    continue;
                };
                let fill = p
                    .fill()
                    .map(|f| {
                        Ok::<_, String>(Fill {
                            paint: color(flat(f.paint())?).into(),
                            opacity: opacity(alpha * f.opacity().get()),
                            rule: match f.rule() {
                                usvg::FillRule::NonZero => FillRule::NonZero,
                                usvg::FillRule::EvenOdd => FillRule::EvenOdd,
                            },
                        })
                    })
                    .transpose()?;
                let stroke = p
                    .stroke()
                    .map(|st| {
                        let (sx, sy) = ts.get_scale();
                        Ok::<_, String>(Stroke {
                            paint: color(flat(st.paint())?).into(),
                            width: st.width().get() * (sx * sy).sqrt(),
                            miter_limit: st.miterlimit().get(),
                            line_cap: match st.linecap() {
                                usvg::LineCap::Butt => LineCap::Butt,
                                usvg::LineCap::Round => LineCap::Round,
                                usvg::LineCap::Square => LineCap::Square,
                            },
                            line_join: match st.linejoin() {
                                usvg::LineJoin::Miter | usvg::LineJoin::MiterClip => {
                                    LineJoin::Miter
                                }
                                usvg::LineJoin::Round => LineJoin::Round,
                                usvg::LineJoin::Bevel => LineJoin::Bevel,
                            },
                            opacity: opacity(alpha * st.opacity().get()),
                            dash: None,
                        })
                    })
                    .transpose()?;
                if fill.is_some() || stroke.is_some() {
                    out.push(Shape { path, fill, stroke });
                }
            }
            usvg::Node::Image(_) => {
                return Err("it embeds an image, which is not drawn: use vector paths".into())
            }
            usvg::Node::Text(_) => {
                return Err(
                    "it has text, which is not drawn: convert the text to outlines (paths)".into(),
                )
            }
        }
    }
    Ok(())
}

fn flat(p: &usvg::Paint) -> Result<usvg::Color, String> {
    match p {
        usvg::Paint::Color(c) => Ok(*c),
        usvg::Paint::LinearGradient(_) | usvg::Paint::RadialGradient(_) => {
            Err("it uses a gradient, which is not drawn: use flat colours".into())
        }
        usvg::Paint::Pattern(_) => {
            Err("it uses a pattern, which is not drawn: use flat colours".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACME: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 40" width="40" height="40">
  <rect width="40" height="40" rx="8" fill="#0b5394"/>
  <path d="M8 30 L20 8 L32 30 Z" fill="#f1c232"/>
</svg>"##;

    #[test]
    fn a_logo_of_shapes_is_its_paths_in_order_with_their_colours() {
        let logo = Logo::parse(ACME).unwrap();
        assert_eq!((logo.width, logo.height), (40.0, 40.0));
        assert_eq!(logo.shapes.len(), 2);
        let b = logo.shapes[1].path.bounds();
        assert_eq!(
            (b.left(), b.top(), b.right(), b.bottom()),
            (8.0, 8.0, 32.0, 30.0)
        );
        let yellow: krilla::paint::Paint = rgb::Color::new(0xf1, 0xc2, 0x32).into();
        assert_eq!(
            logo.shapes[1].fill.as_ref().map(|f| &f.paint),
            Some(&yellow)
        );
    }

    #[test]
    fn what_cannot_be_drawn_is_refused_naming_it() {
        let cases = [
            (
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text x="0" y="9">Acme</text></svg>"#,
                "text",
            ),
            (
                r##"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><defs><linearGradient id="g"><stop offset="0" stop-color="red"/><stop offset="1" stop-color="blue"/></linearGradient></defs><rect width="10" height="10" fill="url(#g)"/></svg>"##,
                "gradient",
            ),
            (
                r##"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><defs><filter id="f"><feGaussianBlur stdDeviation="2"/></filter></defs><rect width="10" height="10" filter="url(#f)"/></svg>"##,
                "filter",
            ),
            ("<html>not an image</html>", "not an SVG"),
            (
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>"#,
                "nothing to draw",
            ),
        ];
        for (svg, said) in cases {
            let e = Logo::parse(svg).unwrap_err();
            assert!(e.contains(said), "{svg}: {e}");
        }
        let big = format!("<svg>{}</svg>", " ".repeat(LOGO_SVG_BYTES_MAX));
        assert!(Logo::parse(&big).unwrap_err().contains("bytes"));
    }
}
