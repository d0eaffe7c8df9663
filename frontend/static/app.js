// onewindow — small enhancements only; every page works without this script.
// 1. Live filtering: <input data-filter="#table-id"> hides table rows that do not match.
// 2. Confirmation: <form data-confirm="text"> asks before it is sent.
// 3. Upload progress: a form with class "uploading" shows its <progress> while it sends.
// 4. Print: a <button data-print hidden> appears and prints the page (without this
//    script it stays hidden and the browser's own print works).
(function () {
  document.querySelectorAll('input[data-filter]').forEach(function (input) {
    var table = document.querySelector(input.getAttribute('data-filter'));
    if (!table) return;
    input.addEventListener('input', function () {
      var q = input.value.trim().toLowerCase();
      table.querySelectorAll('tbody tr').forEach(function (tr) {
        tr.hidden = q !== '' && tr.textContent.toLowerCase().indexOf(q) === -1;
      });
    });
  });
  document.querySelectorAll('form[data-confirm]').forEach(function (form) {
    form.addEventListener('submit', function (e) {
      if (!window.confirm(form.getAttribute('data-confirm'))) e.preventDefault();
    });
  });
  document.querySelectorAll('button[data-print]').forEach(function (b) {
    b.hidden = false;
    b.addEventListener('click', function () { window.print(); });
  });
  document.querySelectorAll('form.uploading').forEach(function (form) {
    form.addEventListener('submit', function () {
      var p = form.querySelector('progress');
      if (p) p.hidden = false;
    });
  });
})();
