-- Check the documented config (docs/neovim.md, loaded as init.lua) the way a user would use it:
-- the FileType autocmd starts gemma-lsp and sets 'omnifunc'; <C-x><C-o> in insert mode shows
-- the suggestion, <C-y> inserts it; then gemma/stats answers through buf_request_sync.
--
-- Run:  nvim --headless -u docs-config.lua -i NONE -n sample.py -c 'luafile tests/lsp/nvim/omnifunc_check.lua'
--   GEMMA_NVIM_RESULT      where to write the JSON findings
--   GEMMA_NVIM_TIMEOUT_MS  limit for every single wait (default 20000)
-- Insert mode only advances when this script has returned, so the steps after <C-x><C-o> run
-- from timers that poll with their own deadline.

local out = { errors = {} }
local result_path = os.getenv('GEMMA_NVIM_RESULT')
local timeout = tonumber(os.getenv('GEMMA_NVIM_TIMEOUT_MS') or '') or 20000

local function finish(ok)
  out.ok = ok
  if result_path then
    vim.fn.writefile({ vim.fn.json_encode(out) }, result_path)
  end
  if ok then
    vim.cmd('qall!')
  else
    io.stderr:write(table.concat(out.errors, '\n') .. '\n')
    vim.cmd('cquit 1')
  end
end

local function guard(fn)
  return function()
    local ok, err = xpcall(fn, debug.traceback)
    if not ok then
      table.insert(out.errors, tostring(err))
      finish(false)
    end
  end
end

-- Poll `cond` every 20 ms from the event loop; then run `next_step`, or fail at the deadline.
local function when(what, cond, next_step)
  local deadline = vim.loop.now() + timeout
  local function poll()
    if cond() then
      guard(next_step)()
    elseif vim.loop.now() > deadline then
      table.insert(out.errors, what .. ': not within ' .. timeout .. ' ms')
      finish(false)
    else
      vim.defer_fn(guard(poll), 20)
    end
  end
  poll()
end

local function attached_client()
  for _, client in pairs(vim.lsp.buf_get_clients(0)) do
    if client.initialized then
      return client
    end
  end
end

guard(function()
  out.filetype = vim.bo.filetype
  local ok = vim.wait(timeout, function()
    return attached_client() ~= nil
  end, 10)
  if not ok then
    error('no initialized client attached to ' .. vim.api.nvim_buf_get_name(0) .. ' within ' .. timeout .. ' ms')
  end
  out.clients = {}
  for _, client in pairs(vim.lsp.buf_get_clients(0)) do
    table.insert(out.clients, client.name)
  end
  out.omnifunc = vim.bo.omnifunc

  -- Append to the empty indented line in main(), and ask with <C-x><C-o>.
  out.row = 10
  out.line_before = vim.api.nvim_buf_get_lines(0, out.row - 1, out.row, true)[1]
  vim.api.nvim_win_set_cursor(0, { out.row, 0 })
  vim.fn.feedkeys('A\24\15', 'n')
  when('a completion menu after <C-x><C-o>', function()
    return vim.fn.mode() == 'i' and #vim.fn.complete_info({ 'items' }).items > 0
  end, function()
    out.complete_info = vim.fn.complete_info({ 'mode', 'items', 'selected' })
    vim.fn.feedkeys('\25\27', 'n') -- <C-y> <Esc>
    when('normal mode after <C-y><Esc>', function()
      return vim.fn.mode() == 'n'
    end, function()
      out.line_after = vim.api.nvim_buf_get_lines(0, out.row - 1, out.row, true)[1]
      -- The stats request exactly as docs/neovim.md shows it (it does not wait for the model
      -- load; by now the completion has loaded it).
      local responses = vim.lsp.buf_request_sync(0, 'gemma/stats', {}, 2000)
      local _, response = next(responses or {})
      out.stats = response and response.result
      finish(true)
    end)
  end)
end)()
