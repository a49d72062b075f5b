// Screenshots of a running TensorBoard for the README, with headless Chromium (not part of the tests).
//
//   npm install @sparticuz/chromium@153 puppeteer-core@24     (a Chromium build inside an npm package)
//   tensorboard --logdir runs/demo_tb --port 6006 &
//   node docs/tensorboard_screenshot.mjs http://localhost:6006/#custom_scalars docs/tensorboard_curves.png
//   node docs/tensorboard_screenshot.mjs http://localhost:6006/#hparams docs/tensorboard_hparams.png
//
// The page is given WAIT ms (default 8000) after the network is idle: TensorBoard draws its charts after loading.
import chromium from "@sparticuz/chromium";
import puppeteer from "puppeteer-core";

const [url, out, width = "1400", height = "900", wait = "8000"] = process.argv.slice(2);
const browser = await puppeteer.launch({
  args: chromium.args,
  executablePath: await chromium.executablePath(),
  headless: "shell",
  defaultViewport: { width: Number(width), height: Number(height) },
});
const page = await browser.newPage();
await page.goto(url, { waitUntil: "networkidle0", timeout: 60000 });
await new Promise((resolve) => setTimeout(resolve, Number(wait)));
await page.screenshot({ path: out });
await browser.close();
