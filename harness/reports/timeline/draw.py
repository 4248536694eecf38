"""A scene as inline SVG, with the page's styles and the few lines of script that zoom it.

The SVG is complete as rendered (every element placed), so the page reads
without script; the script only moves elements when the time axis is zoomed
or panned (wheel, drag, buttons), draws the axis, and shows an element's raw
event on hover. Each element that stands for one event carries
``data-ev="N"`` (its index into the page's raw texts) and, when it belongs to
the counterexample, the class ``cx``: exactly those, so a test can count them.
"""

from __future__ import annotations

from html import escape

import orjson

from harness.checker.operations import INF
from harness.reports.timeline.scene import ERROR, OK, UNKNOWN, Bar, Mark, Scene

WIDTH, LEFT, RIGHT, TOP = 1200, 200, 24, 30
TICK_ROW, BAR_ROW, GAP = 24, 18, 8
OUTCOME_COLOURS = {OK: "#16a34a", ERROR: "#dc2626", UNKNOWN: "#a3a3a3"}

CSS = """
.tl-box{position:relative;margin:8px 0 4px}
.tl-tools{display:flex;gap:6px;align-items:center;font-size:13px;color:#475569;margin:4px 0}
.tl-tools button{font:inherit;padding:1px 10px;border:1px solid #cbd5e1;border-radius:6px;
background:#fff;cursor:pointer}
svg.tl{width:100%;height:auto;display:block;background:#fff;border:1px solid #e2e8f0;
border-radius:8px;cursor:grab;user-select:none;font-family:system-ui,sans-serif}
svg.tl text{font-size:11px;fill:#334155}svg.tl .lane-name{font-size:12px;fill:#0f172a}
svg.tl .lane-detail{fill:#64748b}svg.tl .lane-cx .lane-name{font-weight:700}
svg.tl .band{fill:#f8fafc}svg.tl .grid{stroke:#e2e8f0}
svg.tl .axis text{fill:#475569}
svg.tl .bar{stroke:none}svg.tl .o-unknown{fill-opacity:.55}
svg.tl .bar.open{fill-opacity:.25}svg.tl .cx-bar{stroke:#0f172a;stroke-width:1.5}
svg.tl .ev{stroke-width:2}svg.tl .k-update{stroke:#2563eb}
svg.tl .k-invoke,svg.tl .k-done{stroke:#334155}svg.tl .k-sent{stroke:#1d4ed8}
svg.tl .k-closed{stroke:#475569;fill:none}svg.tl .k-violation{fill:#dc2626;stroke:#7f1d1d}
svg.tl .k-note{stroke:#94a3b8}svg.tl .k-received{stroke:#0f766e}
svg.tl .ev.cx{stroke:#0f172a;stroke-width:3.5}svg.tl .k-violation.cx{stroke-width:2}
svg.tl.focus .ev:not(.cx),svg.tl.focus .bar:not(.cx-bar){opacity:.55}
svg.tl .span{stroke:#93c5fd;stroke-width:2;stroke-dasharray:4 3}
svg.tl .arrow{fill:none;stroke-width:1.6}svg.tl .cx-label{font-weight:600;fill:#0f172a}
.tl-tip{position:fixed;z-index:5;max-width:640px;pointer-events:none;background:#0f172a;
color:#f8fafc;font:12px/1.4 ui-monospace,monospace;padding:6px 8px;border-radius:6px;
white-space:pre-wrap;word-break:break-all;display:none}
.tl-legend{font-size:12px;color:#475569;margin:2px 0 10px}
.tl-legend i{display:inline-block;width:14px;height:8px;margin:0 4px 0 10px;border-radius:2px}
"""

SCRIPT = r"""
(function(){
  var tip=document.createElement('div'); tip.className='tl-tip';
  function nice(span){
    var raw=span/8, mag=Math.pow(10,Math.floor(Math.log10(raw)));
    var m=[1,2,2.5,5,10].find(function(x){return x*mag>=raw;}); return m*mag;
  }
  function label(t,step){
    var units=[[1,'ns'],[1e3,'µs'],[1e6,'ms'],[1e9,'s']], u=units[0];
    units.forEach(function(x){if(step>=x[0]){u=x;}});
    var v=t/u[0], d=Math.max(0,-Math.floor(Math.log10(step/u[0])+1e-9));
    return v.toFixed(Math.min(d,6))+' '+u[1];
  }
  function setup(svg){
    var d=svg.dataset, L=+d.left, W=+d.width, lo=+d.lo, hi=+d.hi, v0=+d.v0, v1=+d.v1;
    var raw=JSON.parse(svg.parentNode.querySelector('script.tl-raw').textContent);
    var placed=svg.querySelectorAll('[data-a]'), axis=svg.querySelector('.axis');
    var H=+svg.getAttribute('height');
    function X(t){return L+(t-v0)/(v1-v0)*W;}
    function draw(){
      placed.forEach(function(el){
        var a=+el.dataset.a;
        if(el.dataset.b===undefined){
          el.setAttribute('transform','translate('+X(a).toFixed(2)+' 0)');return;}
        var b=+el.dataset.b, x1=X(a), x2=X(b);
        if(el.tagName==='rect'){el.setAttribute('x',x1.toFixed(2));
          el.setAttribute('width',Math.max(x2-x1,2).toFixed(2));}
        else if(el.tagName==='line'){el.setAttribute('x1',x1.toFixed(2));
          el.setAttribute('x2',x2.toFixed(2));}
        else{var y1=+el.dataset.y1, y2=+el.dataset.y2, up=Math.min(y1,y2)-18;
          el.setAttribute('d','M'+x1.toFixed(1)+','+y1+' C'+x1.toFixed(1)+','+up+' '+
            x2.toFixed(1)+','+up+' '+x2.toFixed(1)+','+y2);}
      });
      var step=nice(v1-v0), parts=[];
      for(var t=Math.ceil(v0/step)*step;t<=v1;t+=step){
        var x=X(t).toFixed(1);
        parts.push('<line class="grid" x1="'+x+'" x2="'+x+'" y1="'+(+d.top-6)+'" y2="'+H+'"/>'+
          '<text x="'+x+'" y="'+(+d.top-10)+'" text-anchor="middle">'+label(t,step)+'</text>');
      }
      axis.innerHTML=parts.join('');
    }
    function zoom(factor,at){
      var t=at===undefined?(v0+v1)/2:at, span=Math.max((v1-v0)*factor,1);
      v0=t-(t-v0)*factor; v1=v0+span; draw();
    }
    function timeAt(ev){
      var p=svg.createSVGPoint(); p.x=ev.clientX; p.y=ev.clientY;
      var q=p.matrixTransform(svg.getScreenCTM().inverse()); return v0+(q.x-L)/W*(v1-v0);
    }
    svg.addEventListener('wheel',function(ev){ev.preventDefault();
      zoom(ev.deltaY>0?1.25:0.8,timeAt(ev));},{passive:false});
    var drag=null;
    svg.addEventListener('mousedown',function(ev){drag={x:timeAt(ev),v0:v0,v1:v1};});
    window.addEventListener('mouseup',function(){drag=null;});
    svg.addEventListener('mousemove',function(ev){
      if(drag){var shift=drag.x-timeAt(ev); v0+=shift; v1+=shift; draw(); return;}
      var el=ev.target.closest('[data-ev],[data-evs],[data-info]');
      if(!el){tip.style.display='none';return;}
      var ids=(el.dataset.evs||el.dataset.ev||'').split(' ').filter(String);
      tip.textContent=el.dataset.info||ids.map(function(i){return raw[+i];}).join('\n');
      tip.style.display='block';
      tip.style.left=Math.min(ev.clientX+14,window.innerWidth-660)+'px';
      tip.style.top=(ev.clientY+14)+'px';
    });
    svg.addEventListener('mouseleave',function(){tip.style.display='none';});
    var tools=svg.parentNode.querySelector('.tl-tools');
    tools.addEventListener('click',function(ev){
      var act=ev.target.dataset.act; if(!act){return;}
      if(act==='in'){zoom(0.5);} else if(act==='out'){zoom(2);}
      else if(act==='fit'){v0=lo;v1=hi;draw();}
      else if(act==='focus'){var f0=+d.flo,f1=+d.fhi,pad=Math.max((f1-f0)*0.75,(hi-lo)/6,1);
        v0=f0-pad;v1=f1+pad;draw();}
    });
    svg.tlZoom=zoom; draw();
  }
  function start(){document.body.appendChild(tip);
    document.querySelectorAll('svg.tl').forEach(setup);}
  if(document.readyState==='loading'){document.addEventListener('DOMContentLoaded',start);}
  else{start();}
})();
"""

#: Records what drew and any script error on the page, for a headless browser to read.
SELF_CHECK = """
(function(){
  var root=document.documentElement, errors=[];
  window.addEventListener('error',function(e){errors.push(String(e.message));
    root.setAttribute('data-script-errors',errors.join(' | '));});
  function check(){
    var drawn=0;
    document.querySelectorAll('svg.tl').forEach(function(svg){
      var ticks=svg.querySelectorAll('.axis text').length, ok=ticks>0;
      svg.querySelectorAll('.bar').forEach(function(b){if(!(b.getBBox().width>0)){ok=false;}});
      if(ok){drawn++;}
    });
    root.setAttribute('data-timelines-drawn',String(drawn));
    root.setAttribute('data-script-errors',errors.join(' | '));
  }
  window.addEventListener('load',check);
})();
"""

LEGEND = (
    '<p class="tl-legend">bars: requests from invoke to reply, '
    f'<i style="background:{OUTCOME_COLOURS[OK]}"></i>ok'
    f'<i style="background:{OUTCOME_COLOURS[ERROR]}"></i>error'
    f'<i style="background:{OUTCOME_COLOURS[UNKNOWN]}"></i>unknown (no reply) · '
    '<i style="background:#2563eb;width:3px"></i>update received · '
    '<i style="background:#93c5fd;height:2px"></i>observer active · '
    "× connection closed · ◆ frame that broke the spec · "
    "thick outline: the counterexample · hover for the raw event, wheel or drag to zoom "
    "and pan</p>"
)


def svg(scene: Scene, ident: str, *, title: str) -> str:
    """The scene as a timeline box: tools, the SVG, and its raw event texts."""
    plot = WIDTH - LEFT - RIGHT
    # A little room either side, so a mark at the window's edge is not on the frame.
    pad = max((scene.high - scene.low) // 50, 1)
    low, high = scene.low - pad, scene.high + pad
    view_low, view_high = scene.view or (low, high)
    span = max(view_high - view_low, 1)

    def x(t: int) -> float:
        return LEFT + (min(t, high) - view_low) / span * plot

    tops, y = [], TOP
    for lane in scene.lanes:
        tops.append(y)
        y += TICK_ROW + lane.rows * BAR_ROW + GAP
    height = y + 4

    def row_y(item: Mark | Bar) -> float:
        top = tops[item.lane]
        if item.row < 0:
            return top + 4
        return top + TICK_ROW + item.row * BAR_ROW + (BAR_ROW - 10) / 2

    focus_low, focus_high = scene.focus()
    highlighted = any(m.highlighted for m in scene.marks)
    parts = [
        f'<svg class="tl{" focus" if highlighted else ""}" id="{ident}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" data-left="{LEFT}" data-width="{plot}" data-top="{TOP}" '
        f'data-lo="{low}" data-hi="{high}" data-v0="{view_low}" data-v1="{view_high}" '
        f'data-flo="{focus_low}" data-fhi="{focus_high}">'
        f"<title>{escape(title)}</title>",
        f'<defs><clipPath id="{ident}-clip"><rect x="{LEFT}" y="0" width="{plot}" '
        f'height="{height}"/></clipPath>{_markers(scene, ident)}'
        f'<pattern id="{ident}-hatch" width="8" height="8" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="8" height="8" fill="#f1f5f9"/>'
        '<line x1="0" y1="0" x2="0" y2="8" stroke="#cbd5e1" stroke-width="3"/></pattern></defs>',
    ]
    for number, (lane, top) in enumerate(zip(scene.lanes, tops, strict=True)):
        lane_h = TICK_ROW + lane.rows * BAR_ROW
        band = ' class="band"' if number % 2 == 0 else ' fill="#fff"'
        parts.append(
            f'<g class="lane{" lane-cx" if lane.highlighted else ""}">'
            f'<rect{band} x="0" y="{top - GAP / 2}" width="{WIDTH}" height="{lane_h + GAP}"/>'
            f'<text class="lane-name" x="8" y="{top + 14}">{escape(_cut(lane.name, 26))}</text>'
            f'<text class="lane-detail" x="8" y="{top + 28}">{escape(_cut(lane.detail, 28))}'
            "</text></g>"
        )
    parts.append('<g class="axis"></g>')
    parts.append(f'<g clip-path="url(#{ident}-clip)">')
    for start, end in scene.hidden:
        parts.append(
            f'<rect class="hidden" data-a="{start}" data-b="{end}" x="{x(start):.1f}" y="{TOP}" '
            f'width="{max(x(end) - x(start), 2):.1f}" height="{height - TOP}" '
            f'fill="url(#{ident}-hatch)" data-info="events here are not drawn: '
            'the page draws only those nearest the counterexample"/>'
        )
    for found in scene.spans:
        sy = tops[found.lane] + TICK_ROW - 3
        parts.append(
            f'<line class="span" data-a="{found.start}" data-b="{found.end}" '
            f'x1="{x(found.start):.1f}" x2="{x(found.end):.1f}" y1="{sy}" y2="{sy}" '
            f'data-info="observer {escape(found.label)} active"/>'
        )
    for bar in scene.bars:
        by = row_y(bar)
        end = high if bar.end >= INF else bar.end
        classes = f"bar o-{bar.outcome}{' open' if bar.open_end else ''}"
        classes += " cx-bar" if bar.highlighted else ""
        evs = " ".join(str(m.index) for m in bar.marks)
        parts.append(
            f'<rect class="{classes}" data-a="{bar.start}" data-b="{end}" data-evs="{evs}" '
            f'x="{x(bar.start):.1f}" y="{by:.1f}" width="{max(x(end) - x(bar.start), 2):.1f}" '
            f'height="10" rx="2" fill="{OUTCOME_COLOURS[bar.outcome]}"/>'
        )
        if bar.highlighted:
            parts.append(_label(bar.start, x(bar.start), 0, by - 2, bar.label))
    # Labels of highlighted marks a few pixels apart would print over each other: the
    # first one says them all, in order.
    groups: list[tuple[Mark, list[str]]] = []
    last: dict[tuple[int, int], tuple[Mark, list[str]]] = {}
    for mark in scene.marks:
        parts.append(_mark(mark, x(mark.at), row_y(mark)))
        if not (mark.highlighted and mark.label):
            continue
        near = last.get((mark.lane, mark.row))
        if near is not None and x(mark.at) - x(near[0].at) < 60:
            near[1].append(mark.label)
            continue
        group = last[(mark.lane, mark.row)] = (mark, [mark.label])
        groups.append(group)
    for mark, texts in groups:
        parts.append(_label(mark.at, x(mark.at), 5, row_y(mark) + 12, " · ".join(texts)))
    for arrow in scene.arrows:
        a = (arrow.source.start + min(arrow.source.end, high)) // 2
        b = (arrow.target.start + min(arrow.target.end, high)) // 2
        y1, y2 = row_y(arrow.source) + 5, row_y(arrow.target) + 5
        up = min(y1, y2) - 18
        marker = _marker_id(scene, ident, arrow.colour)
        parts.append(
            f'<path class="arrow" data-a="{a}" data-b="{b}" data-y1="{y1:.1f}" '
            f'data-y2="{y2:.1f}" stroke="{arrow.colour}" marker-end="url(#{marker})" '
            f'data-info="write order: {escape(arrow.label)}" d="M{x(a):.1f},{y1:.1f} '
            f'C{x(a):.1f},{up:.1f} {x(b):.1f},{up:.1f} {x(b):.1f},{y2:.1f}"/>'
        )
    parts.append("</g></svg>")
    raw = orjson.dumps(scene.raw).decode().replace("<", "\\u003c")
    tools = (
        '<div class="tl-tools"><button data-act="in">zoom in</button>'
        '<button data-act="out">zoom out</button><button data-act="fit">whole window</button>'
        + ('<button data-act="focus">counterexample</button>' if highlighted else "")
        + f"<span>{scene.events} events drawn</span></div>"
    )
    return (
        f'<div class="tl-box">{tools}{"".join(parts)}'
        f'<script type="application/json" class="tl-raw">{raw}</script></div>'
    )


def _mark(mark: Mark, at: float, y: float) -> str:
    """A point mark drawn around x=0 and moved into place, so zooming moves it whole."""
    classes = f"ev k-{mark.kind}{' cx' if mark.highlighted else ''}"
    if mark.kind in ("update", "received", "sent", "note") and mark.row < 0:
        shape = f"M0,{y:.1f}V{y + 16:.1f}"
    elif mark.kind in ("invoke", "done", "sent", "received"):
        shape = f"M0,{y - 3:.1f}V{y + 13:.1f}"
    elif mark.kind == "closed":
        shape = f"M-4,{y + 4:.1f}l8,8m0,-8l-8,8"
    else:  # a violation: a diamond
        shape = f"M0,{y:.1f}l6,8l-6,8l-6,-8z"
    return (
        f'<path class="{classes}" data-ev="{mark.index}" data-a="{mark.at}" '
        f'transform="translate({at:.2f} 0)" d="{shape}"/>'
    )


def _label(at: int, x: float, dx: float, y: float, text: str) -> str:
    return (
        f'<text class="cx-label" data-a="{at}" transform="translate({x:.2f} 0)" dx="{dx}" '
        f'y="{y:.1f}">{escape(text)}</text>'
    )


def _marker_id(scene: Scene, ident: str, colour: str) -> str:
    colours = sorted({arrow.colour for arrow in scene.arrows})
    return f"{ident}-head{colours.index(colour)}"


def _markers(scene: Scene, ident: str) -> str:
    return "".join(
        f'<marker id="{ident}-head{n}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" '
        f'fill="{colour}"/></marker>'
        for n, colour in enumerate(sorted({arrow.colour for arrow in scene.arrows}))
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
