// Issue 14, Kubeflow training jobs. The demo fleet runs the real training operator in dev and
// prod: prod/nlp llama-ddp (1 master + 1 worker, 2 A100s each) runs, prod/vision vit-ddp has a
// worker that exits 1 and is failed by the operator, dev/nlp-dev bert-ddp succeeds.
import { expect, test } from '@playwright/test';
import { kubectl, signIn, uniqueName, waitHydrated } from './helpers';

test('the jobs page lists PyTorchJobs beside Jobs, with their roles and the operator\'s reason', async ({ page }) => {
  await signIn(page, 'admin');
  await page.goto('/jobs');
  await waitHydrated(page);
  const llama = page.locator('tr[data-job="llama-ddp"]');
  await expect(llama.getByTestId('job-kind')).toHaveText('PyTorchJob', { timeout: 30_000 });
  await expect(llama.getByTestId('job-pods')).toContainText('Master 1/1 active');
  await expect(llama.getByTestId('job-pods')).toContainText('Worker 1/1 active');
  await expect(llama).toContainText('Master 1 × 2 · Worker 1 × 2');
  await expect(page.locator('tr[data-job="pretrain-llm"]').getByTestId('job-kind')).toHaveText('Job');
  const broken = page.locator('tr[data-job="vit-ddp"]');
  await expect(broken).toContainText('failed because 1 Worker replica(s) failed', { timeout: 60_000 });

  await llama.locator('a').first().click();
  await expect(page).toHaveURL(/\/clusters\/prod\/namespaces\/nlp\/jobs\/llama-ddp\?kind=PyTorchJob$/);
  await expect(page.getByTestId('job-roles')).toContainText('Worker');
  await expect(page.getByTestId('pod-table')).toContainText('llama-ddp-master-0');
  await expect(page.getByTestId('pod-table')).toContainText('llama-ddp-worker-0');

  // Cancelled through Gantry, the operator's job goes with its pods (a real PyTorchJob deleted).
  // (Its "Cancelled" note goes with the page's job once the operator's job is gone, so the
  // test reads the end state, not that note.)
  await page.getByTestId('cancel-job').click();
  await expect
    .poll(() => kubectl('prod', '-n', 'nlp', 'get', 'pytorchjobs,pods', '-o', 'name').split('\n').filter((l) => l.includes('llama-ddp')), { timeout: 60_000 })
    .toEqual([]);
  await page.goto('/jobs');
  await waitHydrated(page);
  await expect(page.locator('tr[data-job="llama-ddp"]')).toHaveCount(0);
});

test('a team sees only its own training jobs', async ({ page }) => {
  await signIn(page, 'bob'); // team vision
  await page.goto('/jobs');
  await waitHydrated(page);
  await expect(page.locator('tr[data-job="vit-ddp"]')).toHaveCount(1, { timeout: 30_000 });
  await expect(page.locator('tr[data-job="llama-ddp"]')).toHaveCount(0);
});

test('a deployer launches a PyTorchJob with the fit preview over all its pods', async ({ page }) => {
  const name = uniqueName('ddp');
  await signIn(page, 'dave'); // deployer in nlp (prod is a protected environment: dev, where the operator runs too)
  await page.goto('/launch/job');
  await waitHydrated(page);
  const form = page.getByTestId('job-form');
  await form.locator('select[name="input[cluster]"]').selectOption('dev');
  await form.locator('select[name="input[namespace]"]').selectOption('nlp-dev');
  await form.locator('input[name="input[name]"]').fill(name);
  await form.locator('input[name="input[image]"]').fill('ghcr.io/acme/ddp-trainer:1.0');
  await form.getByTestId('job-kind').selectOption('PyTorchJob');
  await form.locator('input[name="input[gpus]"]').fill('1');
  await form.locator('input[name="input[parallelism]"]').fill('2');
  // Two workers and the master: three pods of one GPU.
  await expect(form.getByTestId('fit')).toContainText('3 × 1 GPU');
  await form.getByRole('button', { name: 'Launch job' }).click();
  await expect(page).toHaveURL(new RegExp(`/clusters/dev/namespaces/nlp-dev/jobs/${name}\\?kind=PyTorchJob$`), { timeout: 30_000 });
  // A real PyTorchJob, taken by the operator: its master and two workers.
  expect(kubectl('dev', '-n', 'nlp-dev', 'get', 'pytorchjob', name, '-o', 'jsonpath={.spec.pytorchReplicaSpecs.Worker.replicas}')).toBe('2');
  await expect(page.getByTestId('job-roles')).toContainText('Worker', { timeout: 30_000 });
  await expect(page.getByTestId('pod-table')).toContainText(`${name}-master-0`, { timeout: 30_000 });
  await expect(page.getByTestId('pod-table')).toContainText(`${name}-worker-1`);
});

test('a viewer is refused a PyTorchJob launch through the API, and nothing is created', async ({ page }) => {
  const name = uniqueName('ddp-refused');
  await signIn(page, 'bob'); // viewer in vision; dev runs the training operator
  await page.goto('/jobs');
  await waitHydrated(page);
  const csrf = await page.locator('input[name="csrf"]').first().inputValue();
  const refused = await page.request.post('/api/v1/clusters/dev/namespaces/vision-dev/jobs', {
    headers: { 'x-csrf-token': csrf },
    data: {
      cluster: 'dev', namespace: 'vision-dev', name, image: 'ghcr.io/acme/ddp-trainer:1.0', command: '', args: '', env: '',
      gpus: '1', gpu_model: '', cpu: '', memory: '', parallelism: '2', completions: '', backoff_limit: '',
      active_deadline_seconds: '', kind: 'PyTorchJob',
    },
  });
  expect(refused.status()).toBe(403);
  expect((await refused.json()).error).toBeTruthy();
  // The operator's cluster holds no such PyTorchJob, and no pods of it.
  expect(kubectl('dev', '-n', 'vision-dev', 'get', 'pytorchjobs,pods', '-o', 'name').split('\n').filter((l) => l.includes(name))).toEqual([]);
});

test('a Kubeflow Trainer TrainJob is listed read-only, with no cancel', async ({ page }) => {
  // prod has Trainer v2's CRDs (not its controller): llama-sft, 2 nodes × 8 GPUs, has no status.
  await signIn(page, 'admin');
  await page.goto('/jobs?q=llama-sft');
  await waitHydrated(page);
  const sft = page.locator('tr[data-job="llama-sft"]');
  await expect(sft.getByTestId('job-kind')).toHaveText('TrainJob', { timeout: 30_000 });
  await expect(sft).toContainText('Node 2 × 8');
  await sft.locator('a').first().click();
  await expect(page).toHaveURL(/\/clusters\/prod\/namespaces\/nlp\/jobs\/llama-sft\?kind=TrainJob$/);
  await expect(page.getByTestId('job-roles')).toContainText('Node');
  await expect(page.getByTestId('cancel-job')).toHaveCount(0);
});

test('the jobs list shows what each job has cost so far, where its GPUs have a price', async ({ page }) => {
  await signIn(page, 'admin');
  await page.goto('/jobs?q=pretrain-llm');
  await waitHydrated(page);
  // 8 priced H100s since the fleet started: the ledger has charged it something.
  await expect(page.locator('tr[data-job="pretrain-llm"]').getByTestId('job-cost')).toHaveText(/^\$\d[\d,]*\.\d\d$/, { timeout: 30_000 });
});

test('a deployer launches a PyTorchJob through the REST API, and the operator takes it', async ({ page }) => {
  const name = uniqueName('ddp-api');
  await signIn(page, 'dave'); // deployer in nlp
  await page.goto('/jobs');
  await waitHydrated(page);
  const csrf = await page.locator('input[name="csrf"]').first().inputValue();
  const launched = await page.request.post('/api/v1/clusters/dev/namespaces/nlp-dev/jobs', {
    headers: { 'x-csrf-token': csrf },
    data: {
      cluster: 'dev', namespace: 'nlp-dev', name, image: 'ghcr.io/acme/ddp-trainer:1.0', command: '', args: '', env: '',
      gpus: '1', gpu_model: '', cpu: '', memory: '', parallelism: '1', completions: '', backoff_limit: '2',
      active_deadline_seconds: '', kind: 'PyTorchJob',
    },
  });
  expect(launched.status(), await launched.text()).toBe(200);
  expect(kubectl('dev', '-n', 'nlp-dev', 'get', 'pytorchjob', name, '-o', 'jsonpath={.spec.runPolicy.backoffLimit}')).toBe('2');
  await expect
    .poll(() => kubectl('dev', '-n', 'nlp-dev', 'get', 'pods', '-o', 'name').split('\n').filter((l) => l.includes(name)).length, { timeout: 60_000 })
    .toBe(2);
});
