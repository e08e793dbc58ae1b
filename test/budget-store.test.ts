import { MemoryBudgetStore } from '../src/stores/memory-budget.js';
import { describeBudgetStoreContract } from './support/budget-store-contract.js';

describeBudgetStoreContract('the in-memory store', async (now) => new MemoryBudgetStore({ now }));
