// Screenshots of the built documentation site, with headless Chromium, to look at its pages as a reader does
// (not part of the tests; the same Chromium as docs/tensorboard_screenshot.mjs).
//
//   npm install @sparticuz/chromium@153 puppeteer-core@24     (a Chromium build inside an npm package)
//   make docs                                                  (the site, in site/)
//   node docs/site_screenshot.mjs site /tmp/shots / training/ api/#bam_lightning.BAM
//
// Serves SITE on a free local port (a plain static server, as a web host would), opens each page and writes
// OUT/<page>.png: the top of the page at WIDTH x HEIGHT (default 1400 x 900), and OUT/<page>-full.png, the whole page.
// A page with an #anchor is scrolled to it first. Set CHROMIUM to a browser of your own instead of the npm one.
import { createServer } from "node:http";
import { mkdir, readFile, stat } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import puppeteer from "puppeteer-core";

const [siteDir, outDir, ...pages] = process.argv.slice(2);
if (!siteDir || !outDir || pages.length === 0) {
  console.error("usage: node docs/site_screenshot.mjs SITE OUT PAGE [PAGE ...]   (e.g. site /tmp/shots / training/)");
  process.exit(2);
}
const width = Number(process.env.WIDTH ?? 1400);
const height = Number(process.env.HEIGHT ?? 900);
const types = {
  ".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".png": "image/png",
  ".svg": "image/svg+xml", ".json": "application/json", ".woff2": "font/woff2", ".ico": "image/x-icon",
};

const server = createServer(async (request, response) => {
  let path = join(siteDir, normalize(decodeURIComponent(new URL(request.url, "http://x").pathname)));
  try {
    if ((await stat(path)).isDirectory()) path = join(path, "index.html");
    response.writeHead(200, { "Content-Type": types[extname(path)] ?? "application/octet-stream" });
    response.end(await readFile(path));
  } catch {
    response.writeHead(404);
    response.end("not found");
  }
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${server.address().port}`;

let launch;
if (process.env.CHROMIUM) {
  launch = { executablePath: process.env.CHROMIUM, args: ["--no-sandbox"], headless: true };
} else {
  const chromium = (await import("@sparticuz/chromium")).default;
  launch = { executablePath: await chromium.executablePath(), args: chromium.args, headless: "shell" };
}
const browser = await puppeteer.launch({ ...launch, defaultViewport: { width, height } });
await mkdir(outDir, { recursive: true });
const failed = [];
for (const page of pages) {
  const tab = await browser.newPage();
  tab.on("pageerror", (error) => failed.push(`${page}: ${error.message}`));
  tab.on("response", (r) => r.status() >= 400 && failed.push(`${page}: ${r.status()} ${r.url()}`));
  await tab.goto(base + "/" + page.replace(/^\//, ""), { waitUntil: "networkidle0", timeout: 60000 });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const name = page.replace(/#.*/, "").replace(/^\/|\/$/g, "").replace(/\//g, "_") || "index";
  await tab.screenshot({ path: join(outDir, `${name}.png`) });
  await tab.screenshot({ path: join(outDir, `${name}-full.png`), fullPage: true });
  console.log(`${base}/${page} -> ${join(outDir, name)}.png, ${name}-full.png`);
  await tab.close();
}
await browser.close();
server.close();
if (failed.length) {
  console.error(failed.join("\n"));
  process.exit(1);
}
