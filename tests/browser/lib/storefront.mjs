// Page object of the storefront: what a customer does, in test-sized verbs (data-testid locators).

export class Storefront {
  constructor(page) {
    this.page = page;
  }

  /** Opens `url` and waits until the storefront has booted (brand shown) or refused to. */
  async open(url) {
    await this.page.goto(url);
    await this.page
      .locator('[data-testid="brand-name"], [data-testid="unknown-reseller"], [data-testid="load-error"]')
      .first()
      .waitFor();
  }

  tab(name) {
    return this.page.getByTestId(`tab-${name}`);
  }

  async show(name) {
    await this.tab(name).click();
  }

  monthlyTotal() {
    return this.page.getByTestId('monthly-total');
  }

  async total() {
    return (await this.monthlyTotal().textContent()).trim();
  }

  /** Waits until the monthly total differs from `before` and returns the new one. */
  async totalAfter(before) {
    await this.page.waitForFunction(
      (b) => {
        const el = document.querySelector('[data-testid="monthly-total"]');
        return el && el.textContent.trim() !== b;
      },
      before,
    );
    return this.total();
  }

  tiers() {
    return this.page.getByTestId('tier');
  }

  tier(i) {
    return this.tiers().nth(i);
  }

  async tierNames() {
    return this.page.locator('[data-testid="tier-name"]').evaluateAll((els) => els.map((e) => e.value));
  }

  component(tierIndex, componentIndex) {
    return this.tier(tierIndex).getByTestId('component').nth(componentIndex);
  }

  async addComponent(tierIndex, kind) {
    const t = this.tier(tierIndex);
    await t.getByTestId('add-kind').selectOption(kind);
    await t.getByTestId('add-component').click();
  }

  field(tierIndex, componentIndex, field) {
    return this.component(tierIndex, componentIndex).getByTestId(`field-${field}`);
  }

  async setSetting(id, value) {
    await this.page.getByTestId(`setting-${id}`).first().selectOption(value);
  }

  async setDate(isoDay) {
    await this.page.getByTestId('setting-at').fill(isoDay);
    await this.page.getByTestId('setting-at').dispatchEvent('change');
  }

  async chooseSla(id) {
    await this.page.getByTestId(`sla-${id}`).click();
  }

  /** Clicks "Share link" and returns the link shown. */
  async share() {
    await this.page.getByTestId('share').click();
    const box = this.page.getByTestId('share-url');
    await box.waitFor();
    return box.inputValue();
  }
}
