window.__reportErrors = [];
function __reportError(text){
  window.__reportErrors.push(text);
  document.documentElement.dataset.errors = String(window.__reportErrors.length);
  var box = document.getElementById("errors");
  if (box) { var li = document.createElement("li"); li.textContent = text; box.appendChild(li); }
}
window.addEventListener("error", function(e){ __reportError("error: " + e.message); });
window.addEventListener("unhandledrejection", function(e){ __reportError("rejection: " + e.reason); });
(function(){ var orig = console.error; console.error = function(){
  __reportError("console.error: " + Array.prototype.join.call(arguments, " ")); return orig.apply(console, arguments); }; })();
